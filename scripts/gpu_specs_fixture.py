"""Write tests/fixtures/gpu_specs.json: the datasheet figures of DATASHEETS.json (per model, each figure
with its sources), plus, where a public `nvidia-smi -q` dump of the same card exists in
tests/fixtures/public/, the max SM and memory clocks that card reports (NVML's max clocks: what
devcheck reads on a real card), so a stand-in built from a model's figures needs nothing invented.
Models added in tests/fixtures/gpu_specs.json itself (`added_here`: why, `sources`: where from) are kept.

    python scripts/gpu_specs_fixture.py DATASHEETS.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def max_clocks(text: str) -> tuple[str | None, int | None, int | None, str | None]:
    """(product name, max SM MHz, max memory MHz, product brand) from a text or XML dump."""
    name = re.search(r"Product Name\s*:\s*(.+)|<product_name>(.+?)</product_name>", text)
    brand = re.search(r"Product Brand\s*:\s*(.+)|<product_brand>(.+?)</product_brand>", text)
    xml = re.search(r"<max_clocks>.*?<sm_clock>(\d+) MHz.*?<mem_clock>(\d+) MHz", text, re.S)
    txt = re.search(r"Max Clocks\s*\n(?:.*\n)*?\s*SM\s*:\s*(\d+) MHz\s*\n\s*Memory\s*:\s*(\d+) MHz", text)
    found = xml or txt
    product = (name.group(1) or name.group(2)).strip() if name else None
    brand_text = (brand.group(1) or brand.group(2)).strip() if brand else None
    return product, int(found.group(1)) if found else None, int(found.group(2)) if found else None, brand_text


def main(datasheets: Path) -> None:
    models = json.loads(datasheets.read_text())
    dumps = {}
    for path in sorted((ROOT / "tests/fixtures/public").iterdir()):
        if path.suffix in (".txt", ".xml"):
            product, sm, memory, brand = max_clocks(path.read_text(errors="replace"))
            if product and memory:
                dumps.setdefault(product, (path.name, sm, memory, brand))
    for model in models:
        found = dumps.get(model["nvidia_smi_name"]) or (None, None, None, None)
        model["dump"], model["max_sm_mhz"], model["max_memory_mhz"], model["brand"] = found
    out = ROOT / "tests/fixtures/gpu_specs.json"
    known = {m["name"] for m in models}  # models added here (each says why in `added_here`) are kept
    models += [m for m in json.loads(out.read_text()) if m.get("added_here") and m["name"] not in known]
    out.write_text(json.dumps(models, indent=1) + "\n")
    print(f"wrote {out}: {len(models)} models, {sum(bool(m['dump']) for m in models)} with a dump's clocks")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/gpu_specs_fixture.py DATASHEETS.json")
    main(Path(sys.argv[1]))
