"Add a navigation bar (every page, by notebook order and title) to the nbconvert HTML pages of the docs site."
import json, re, sys
from pathlib import Path

site = Path(sys.argv[1])
pages = []
for html in sorted(site.glob('*.html')):
    nb = Path('_proc')/(html.stem + '.ipynb')
    title = html.stem
    if nb.exists():
        for c in json.loads(nb.read_text())['cells']:
            src = ''.join(c['source'])
            m = re.search(r'^title:\s*"?(.+?)"?\s*$', src, re.M) or re.search(r'^#\s+(.+)$', src, re.M)
            if m: title = m.group(1); break
    pages.append((html, 'Home' if html.stem == 'index' else title))
pages.sort(key=lambda p: (p[0].stem != 'index', p[0].stem))
nav = ('<nav style="font-family:sans-serif;padding:8px 16px;background:#f4f4f8;border-bottom:1px solid #ddd">'
       + ' | '.join(f'<a href="{h.name}">{t}</a>' for h, t in pages) + '</nav>')
for html, _ in pages:
    s = html.read_text()
    html.write_text(re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, s, count=1))
print(f"site index: {len(pages)} pages")
