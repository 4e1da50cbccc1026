"""The autoscaling tick alone, in one process over N stacks on a real Redis."""
