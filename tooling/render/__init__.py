"""Rendering: environments, physical names, the export/import graph, the templates
and samconfig. Pure: it imports no AWS SDK (a test holds it to that)."""
