"""Fill the numbers the README (nbs/index.ipynb) and the Benchmarks page quote, from saved results, so that no number
is copied by hand. Markers in markdown cells:

- {{demo:KEY}}: the main job's saved run in benchmarks/results/demo/ (metrics.json, state.json,
  export/export_report.json of `lesion-run --out runs/demo`);
- {{md:FILE#ROW#COLUMN}}: a cell of a markdown table in benchmarks/results/FILE: the first row whose cells, joined by
  ' | ' (bold and backticks removed), contain ROW, in the column headed COLUMN.

An unknown key, a missing file, row or column, or a marker left over fails the docs build.

Usage: python tools/readme_numbers.py NOTEBOOK [RUN_DIR]   (rewrites the processed notebook in place)"""
import json, re, sys
from pathlib import Path

from lesion_fastai.metrics import fmt_ci        # the report's own formats and model names
from lesion_fastai.report import MODELS

def signed_ci(t, d=4): return f"{t[0]:+.{d}f} [{t[1]:+.{d}f}, {t[2]:+.{d}f}]"

def values(run:Path) -> dict:
    "Every quotable number of the saved run, by key"
    m = json.loads((run/'metrics.json').read_text())
    st = json.loads((run/'state.json').read_text())
    ex = json.loads((run/'export'/'export_report.json').read_text())
    M, d = m['models'], m['distilled_minus_plain']
    h = M['student_distilled']
    v = {'holdout_images': f"{h['n']}", 'holdout_malignant': f"{h['positives']}",
         'diff_pauc': signed_ci(d['pauc']), 'diff_auc': signed_ci(d['auc']),
         'diff_excludes_zero': 'excludes zero' if d['pauc'][1] > 0 or d['pauc'][2] < 0 else 'includes zero',
         'table': '\n'.join(f"| {MODELS[k]} | {fmt_ci(r['pauc'])} | {fmt_ci(r['auc'])} |" for k, r in M.items())}
    for k, r in M.items(): v[f'{k}_pauc'], v[f'{k}_auc'] = f"{r['pauc'][0]:.3f}", f"{r['auc'][0]:.3f}"
    secs = sum(s.get('seconds', 0) for s in st.values())
    v['train_export_seconds'] = f"{secs:.0f}"
    best = ex.get('recommended')
    v['recommended_file'] = ex['exports'][best]['file'] if best else 'none'
    v['recommended_mb'] = f"{ex['exports'][best]['size_mb']:.1f}" if best else 'n/a'
    for f, e in ex['exports'].items():
        if 'pauc' in e: v[f'{f}_pauc'] = f"{e['pauc']:.4f}"
        if 'size_mb' in e: v[f'{f}_mb'] = f"{e['size_mb']:.1f}"
        v[f'{f}_passes'] = 'passes' if e.get('passes', True) else 'fails'
    info = json.loads((run/'run.json').read_text())
    w = info['wall_seconds']; v['wall_time'] = f"{int(w // 60)} min {int(round(w % 60))} s"
    v['reproduced'] = ('the same numbers (every score, prediction and export check; timings aside)' if info.get('reproduced')
                       else 'other numbers' if 'reproduced' in info else 'no second run on record')
    op = ex['operating_point']
    v['threshold'], v['op_sensitivity'], v['op_specificity'] = f"{op['threshold']:.4f}", f"{op['sensitivity']:.3f}", f"{op['specificity']:.3f}"
    return v

RESULTS = Path(__file__).resolve().parent.parent/'benchmarks'/'results'

def _cells(line): return [c.strip().replace('**', '').replace('`', '') for c in line.strip().strip('|').split('|')]

def md_cell(spec:str, where:str) -> str:
    "The table cell `FILE#ROW#COLUMN` names (see the module's docstring)"
    try: fname, row, col = spec.split('#')
    except ValueError: raise KeyError(f"{where}: {{{{md:{spec}}}}}: expected FILE#ROW#COLUMN") from None
    row = row.replace('\\|', '|')         # a pipe inside a markdown table cell is written \\|
    f = RESULTS/fname
    if not f.exists(): raise KeyError(f"{where}: {{{{md:{spec}}}}}: no results file {f}")
    head = None
    for line in f.read_text().splitlines():
        if not line.startswith('|'): head = None; continue
        cells = _cells(line)
        if head is None: head = cells; continue
        if set(''.join(cells)) <= set('-: '): continue
        if col in head and row in ' | '.join(cells): return cells[head.index(col)]
    raise KeyError(f"{where}: {{{{md:{spec}}}}}: no row with {row!r} in a table of {fname} with a column {col!r}")

def fill(text:str, v:dict, where:str) -> str:
    def sub(mt):
        k = mt.group(1)
        if k not in v: raise KeyError(f"{where}: {{{{demo:{k}}}}} has no source in the saved run (keys: {', '.join(sorted(v))})")
        return v[k]
    text = re.sub(r'\{\{md:([^}]+)\}\}', lambda mt: md_cell(mt.group(1), where), text)
    return re.sub(r'\{\{demo:([\w.]+)\}\}', sub, text)

def main():
    nb_f = Path(sys.argv[1]); run = Path(sys.argv[2] if len(sys.argv) > 2 else 'benchmarks/results/demo')
    try: v = values(run)
    except FileNotFoundError as e: sys.exit(f"readme numbers: the saved run is incomplete: {e}")
    nb = json.loads(nb_f.read_text()); n = 0
    for i, c in enumerate(nb['cells']):
        src = ''.join(c['source'])
        if '{{demo:' not in src and '{{md:' not in src: continue
        if c['cell_type'] != 'markdown': sys.exit(f"readme numbers: {nb_f} cell {i}: markers only in markdown cells")
        try: new = fill(src, v, f"{nb_f} cell {i}")
        except KeyError as e: sys.exit(f"readme numbers: {e.args[0]}")
        n += src.count('{{demo:') + src.count('{{md:'); c['source'] = new
    left = [i for i, c in enumerate(nb['cells']) if re.search(r'\{\{(demo|md):', ''.join(c['source']))]
    if left: sys.exit(f"readme numbers: markers left in cells {left}")
    nb_f.write_text(json.dumps(nb, indent=1))
    print(f"readme numbers: {n} filled in {nb_f.name} from {run} and {RESULTS}")

if __name__ == '__main__': main()
