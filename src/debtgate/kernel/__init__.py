"""The kernel side: nftables (``nft``: libnftables, one transaction per plan;
``nftnl``: the netlink fast path for host-set plans) and conntrack (``conntrack``,
``conntrack_child``: cuts in a child process). Only the project's own table
``inet debtgate`` is ever touched; see docs/kernel-contract.md.
"""
