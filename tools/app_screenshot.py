"""The README's and the benchmarks page's picture of the app: the shipped student's result screen on a held-out photo.

Builds the offline app around the student that ships in the package (`build_app()`), serves it on localhost, opens it
in headless Chromium (Playwright, Debian's `chromium`) at a phone's size (390 x 844 CSS pixels, 2x), gives it one
PAD-UFES-20 smartphone photo of a skin cancer that the shipped student's run held out, and saves the result section.
The photo is not chosen for a good answer: it is the held-out cancer whose probability (the package's `holdout.csv`)
is the median of the held-out cancers'.

    python tools/app_screenshot.py                     # writes nbs/images/app_result.png
"""
import argparse, shutil, tempfile
from pathlib import Path
import pandas as pd
from playwright.sync_api import sync_playwright
from lesion_fastai.app import build_app, serve_app
from lesion_fastai.data import find_shared
from lesion_fastai.predict import pretrained_student

def median_cancer(model_dir:Path, photos:Path) -> Path:
    "The held-out PAD-UFES-20 cancer whose probability is the median of the held-out cancers' (the middle one of an odd count, the lower of an even one)"
    h = pd.read_csv(model_dir/'holdout.csv')
    c = h[(h.source == 'pad_ufes20') & (h.target == 1)].sort_values('probability').reset_index(drop=True)
    if c.empty: raise ValueError(f"{model_dir/'holdout.csv'}: no held-out PAD-UFES-20 cancer")
    row = c.iloc[(len(c) - 1) // 2]
    f = photos/'images'/(row.image_id.split(':', 1)[1] + '.png')
    if not f.exists(): raise FileNotFoundError(f"{f}: the held-out photo {row.image_id} is not in {photos/'images'}")
    print(f"{row.image_id}: held-out probability {row.probability:.3f}, the median of {len(c)} held-out cancers")
    return f

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--photos', default=None, help="the PAD-UFES-20 folder (default: ../shared/data/pad_ufes20)")
    ap.add_argument('--out', default='nbs/images/app_result.png')
    a = ap.parse_args()
    photo = median_cancer(pretrained_student(), Path(a.photos) if a.photos else find_shared('pad_ufes20'))
    with tempfile.TemporaryDirectory() as d:
        app = build_app(out=Path(d)/'app')
        with sync_playwright() as pw, serve_app(app) as url:
            browser = pw.chromium.launch(executable_path=shutil.which('chromium'), args=['--no-sandbox'])
            page = browser.new_context(viewport=dict(width=390, height=844), device_scale_factor=2).new_page()
            page.goto(url); page.evaluate('lesionApp.ready')
            page.set_input_files('#photo', str(photo)); page.wait_for_selector('#result:not([hidden])')
            page.evaluate("document.querySelector('#result details').open = true")
            print(page.inner_text('#model')); print(page.inner_text('#result'))
            b = page.evaluate("(() => { const r = document.querySelector('#result').getBoundingClientRect(); "
                              "return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()")   # page coordinates
            m = max(0., min(b['x'], 20.))                            # the result section with the page's own margin around it
            page.screenshot(path=a.out, full_page=True, clip=dict(x=b['x'] - m, y=b['y'] - m, width=b['width'] + 2 * m, height=b['height'] + 2 * m))
            browser.close()
    print(f"wrote {a.out}")

if __name__ == '__main__': main()
