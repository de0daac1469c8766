"""The department desk: the web page where a department clerk logs in, reads a case and decides it."""
