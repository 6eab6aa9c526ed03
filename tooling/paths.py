"""Where things are: the repository root, and the tool environments under it."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
