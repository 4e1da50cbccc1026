"""The local cluster's real node: its network, daemons and add-ons (see ``realnode``)."""
