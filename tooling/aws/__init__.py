"""Every call to AWS and to sam, and the embedded local AWS. No deploy logic here:
callers get plain answers, and AWS errors mapped to the project's own types."""
