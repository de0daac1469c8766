"""Provisioning helpers: from an org-tree file to an Ansible inventory."""
