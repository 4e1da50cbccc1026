"""What the forecast costs at start-up: process CPU to learn stacks' 28-day histories,
and the bytes one learned forecast holds (``python -m bench.forecast``)."""
