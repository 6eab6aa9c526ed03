"""The deployment tooling of ai-social-media: pure logic (naming, environment
files, the export/import graph, rendering) plus, in aws.py, every AWS call."""
