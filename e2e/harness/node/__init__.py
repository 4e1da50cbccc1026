"""The real node of the local cluster: network, daemons, add-ons (see :mod:`harness.node.realnode`)."""
