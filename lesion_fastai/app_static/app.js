'use strict';
// Lesion check: the student runs here, in the browser (onnxruntime-web, WebAssembly). The photo never leaves the phone.
// Preprocessing reproduces Python's (lesion_fastai.cache.resize_square): the centre square, Pillow's box reduction by
// floor(side / size / 3) when that is 2 or more, then Pillow's bilinear resampling in its fixed-point arithmetic, RGB
// in [0, 1], NCHW; so the probabilities equal ONNX Runtime's in Python.
(function () {
  const PB = 22, ONE = 1 << PB;                       // Pillow's PRECISION_BITS for 8-bit images

  function reduceBox(src, w, h, f) {                   // Pillow's ImagingReduce (with its corners), f x f boxes, RGB
    const ow = Math.ceil(w / f), oh = Math.ceil(h / f), out = new Uint8Array(ow * oh * 3);
    for (let y = 0; y < oh; y++) {
      const y0 = y * f, y1 = Math.min(y0 + f, h);
      for (let x = 0; x < ow; x++) {
        const x0 = x * f, x1 = Math.min(x0 + f, w), n = (y1 - y0) * (x1 - x0);
        const mult = Math.floor(4294967296 / (256 * n)), amend = Math.floor(n / 2);
        for (let c = 0; c < 3; c++) {
          let ss = amend;
          for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) ss += src[(yy * w + xx) * 3 + c];
          out[(y * ow + x) * 3 + c] = Math.floor(ss * mult / 16777216);
        }
      }
    }
    return [out, ow, oh];
  }

  function coeffs(inSize, in0, in1, outSize) {         // Pillow's precompute_coeffs + normalize_coeffs_8bpc, bilinear
    const scale = (in1 - in0) / outSize, fs = Math.max(scale, 1), support = fs, ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2), kk = new Int32Array(outSize * ksize), k = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      let ww = 0, xmin = Math.trunc(center - support + 0.5), xmax = Math.trunc(center + support + 0.5);
      if (xmin < 0) xmin = 0; if (xmax > inSize) xmax = inSize; xmax -= xmin;
      for (let x = 0; x < xmax; x++) { const t = Math.abs((x + xmin - center + 0.5) / fs); k[x] = t < 1 ? 1 - t : 0; ww += k[x]; }
      for (let x = 0; x < xmax; x++) {
        const v = ww !== 0 ? k[x] / ww : k[x];
        kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
      }
      bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xmax;
    }
    return [ksize, bounds, kk];
  }
  const clip8 = (ss) => ss <= 0 ? 0 : ss >= (ONE * 256) ? 255 : Math.floor(ss / ONE);

  function resample(src, w, h, box, size) {           // Pillow's ImagingResample: horizontal pass, then vertical
    const [kh, bh, kkh] = coeffs(w, box[0], box[2], size), [kv, bv, kkv] = coeffs(h, box[1], box[3], size);
    const needH = size !== w || box[0] !== 0 || box[2] !== size, needV = size !== h || box[1] !== 0 || box[3] !== size;
    let img = src, iw = w, ih = h, y0 = 0;
    if (needH) {
      const first = bv[0], last = bv[(size - 1) * 2] + bv[(size - 1) * 2 + 1], rows = last - first, t = new Uint8Array(size * rows * 3);
      for (let y = 0; y < rows; y++) for (let xx = 0; xx < size; xx++) {
        const xmin = bh[xx * 2], xmax = bh[xx * 2 + 1];
        for (let c = 0; c < 3; c++) {
          let ss = ONE >> 1;
          for (let x = 0; x < xmax; x++) ss += src[((y + first) * w + x + xmin) * 3 + c] * kkh[xx * kh + x];
          t[(y * size + xx) * 3 + c] = clip8(ss);
        }
      }
      img = t; iw = size; ih = rows; y0 = first;
    }
    if (!needV) return img;
    const out = new Uint8Array(size * size * 3);
    for (let yy = 0; yy < size; yy++) {
      const ymin = bv[yy * 2] - y0, ymax = bv[yy * 2 + 1];
      for (let xx = 0; xx < iw; xx++) for (let c = 0; c < 3; c++) {
        let ss = ONE >> 1;
        for (let y = 0; y < ymax; y++) ss += img[((y + ymin) * iw + xx) * 3 + c] * kkv[yy * kv + y];
        out[(yy * size + xx) * 3 + c] = clip8(ss);
      }
    }
    return out;
  }

  function resizeSquare(rgba, w, h, size) {            // lesion_fastai.cache.resize_square(img, size, 'crop')
    const s = Math.min(w, h), l = (w - s) >> 1, t = (h - s) >> 1;
    let src = new Uint8Array(s * s * 3);
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) for (let c = 0; c < 3; c++)
      src[(y * s + x) * 3 + c] = rgba[((y + t) * w + x + l) * 4 + c];
    const f = Math.floor(s / size / 3);
    let box = [0, 0, s, s], sw = s, sh = s;
    if (f > 1) { [src, sw, sh] = reduceBox(src, s, s, f); box = [0, 0, s / f, s / f]; }
    if (sw === size && sh === size && box[2] === size) return src;
    return resample(src, sw, sh, box, size);
  }

  function quality(rgba, w, h, q) {                    // lesion_fastai.app.photo_quality, on the 256 px centre square
    const S = 256, rgb = resizeSquare(rgba, w, h, S), g = new Float64Array(S * S);
    let sum = 0, clipped = 0;
    for (let i = 0; i < S * S; i++) {
      const r = rgb[i * 3], gg = rgb[i * 3 + 1], b = rgb[i * 3 + 2];
      g[i] = 0.299 * r + 0.587 * gg + 0.114 * b; sum += g[i];
      if (Math.max(r, gg, b) >= 250) clipped++;
    }
    let m = 0, m2 = 0, n = 0;
    for (let y = 1; y < S - 1; y++) for (let x = 1; x < S - 1; x++) {
      const i = y * S + x, v = g[i - S] + g[i + S] + g[i - 1] + g[i + 1] - 4 * g[i]; m += v; m2 += v * v; n++;
    }
    const sharpness = m2 / n - (m / n) ** 2, brightness = sum / (S * S) / 255, clippedShare = clipped / (S * S), reasons = [];
    if (sharpness < q.min_sharpness) reasons.push('The photo is blurred: hold the phone still, a little further away, and let it focus.');
    if (clippedShare > q.max_clipped) reasons.push('The photo is too bright (parts are white): avoid the flash and direct sunlight.');
    if (brightness < q.min_brightness) reasons.push('The photo is too dark: take it in daylight or a well-lit room.');
    return {ok: reasons.length === 0, sharpness, brightness, clipped: clippedShare, reasons};
  }

  async function pixels(image) {                       // Blob | ImageData | same-origin URL -> {rgba, w, h}
    if (typeof ImageData !== 'undefined' && image instanceof ImageData) return {rgba: image.data, w: image.width, h: image.height};
    if (typeof image === 'string') {
      const u = new URL(image, location.href);
      if (u.origin !== location.origin) throw new Error('only images of this page\'s own origin are read');
      image = await (await fetch(u)).blob();
    }
    const bmp = await createImageBitmap(image, {imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
    const cv = new OffscreenCanvas(bmp.width, bmp.height), ctx = cv.getContext('2d');
    ctx.drawImage(bmp, 0, 0);
    return {rgba: ctx.getImageData(0, 0, bmp.width, bmp.height).data, w: bmp.width, h: bmp.height, bitmap: bmp};
  }

  const state = {};
  async function load() {
    state.cfg = await (await fetch('app.json')).json();
    const want = Number(new URLSearchParams(location.search).get('threads')) || 0;
    ort.env.wasm.numThreads = want || (self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
    ort.env.wasm.wasmPaths = new URL('./', location.href).href;
    // an int8 graph runs as its quantise and float steps, as lesion_fastai's Python runtime does (runtimes chapter: fused
    // int8 kernels saturate on some CPUs); where 'all' optimisations still reject a graph, 'basic' loads it, with the same results
    const options = (level) => ({executionProviders: ['wasm'], graphOptimizationLevel: level, extra: {session: {disable_quant_qdq: '1'}}});
    let level = 'all';
    try { state.session = await ort.InferenceSession.create(state.cfg.model, options(level)); }
    catch (e) { level = 'basic'; state.session = await ort.InferenceSession.create(state.cfg.model, options(level)); }
    return {threads: ort.env.wasm.numThreads, model: state.cfg.model, size: state.cfg.size, version: state.cfg.version, views: views(), optimization: level};
  }
  const ready = load();

  function dihedral(x, S) {                           // the 8 flips and 90-degree rotations of a (3, S, S) image, as one batch
    const n = S * S, out = new Float32Array(8 * 3 * n);  // (Python's predict.dihedral_views: np.rot90 of the image or its mirror)
    let v = 0;
    for (const f of [false, true]) for (let k = 0; k < 4; k++, v++)
      for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) {
        let rr = r, cc = c;
        for (let t = 0; t < k; t++) { const r0 = rr; rr = cc; cc = S - 1 - r0; }   // np.rot90: out[r][c] = in[c][S-1-r]
        if (f) cc = S - 1 - cc;                                                   // the mirror, x[..., ::-1]
        for (let ch = 0; ch < 3; ch++) out[(v * 3 + ch) * n + r * S + c] = x[ch * n + rr * S + cc];
      }
    return out;
  }
  const views = () => (Number(new URLSearchParams(location.search).get('views')) || (state.cfg.tta ? 8 : 1)) === 8 ? 8 : 1;

  async function predict(image) {
    await ready;
    const {rgba, w, h, bitmap} = await pixels(image), S = state.cfg.size, V = views();
    const q = quality(rgba, w, h, state.cfg.quality), rgb = resizeSquare(rgba, w, h, S), x = new Float32Array(3 * S * S);
    for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) x[c * S * S + i] = rgb[i * 3 + c] / 255;
    const t0 = performance.now();
    const res = await state.session.run({image: new ort.Tensor('float32', V === 8 ? dihedral(x, S) : x, [V, 3, S, S])});
    let z = 0;                                         // test-time augmentation: the mean logit of the views (Python's tta_logits)
    for (let k = 0; k < V; k++) { const pk = Math.min(Math.max(res.prob.data[k], 1e-7), 1 - 1e-7); z += Math.log(pk / (1 - pk)); }
    const ms = performance.now() - t0, p = V === 1 ? res.prob.data[0] : 1 / (1 + Math.exp(-z / V));
    const decision = !q.ok ? 'retake' : p >= state.cfg.threshold ? 'refer' : 'routine';
    return {probability: p, decision, quality: q, ms, bitmap, warning: state.cfg.demo_warning || ''};   // a demo model says so on every result
  }

  // past checks, kept in this browser only (IndexedDB)
  function db() {
    return new Promise((ok, bad) => { const r = indexedDB.open('lesion-check', 1);
      r.onupgradeneeded = () => r.result.createObjectStore('checks', {keyPath: 'time'}); r.onsuccess = () => ok(r.result); r.onerror = () => bad(r.error); });
  }
  async function store(mode, f) {
    const d = await db();
    return new Promise((ok, bad) => { const tx = d.transaction('checks', mode), r = f(tx.objectStore('checks')); tx.oncomplete = () => ok(r && r.result); tx.onerror = () => bad(tx.error); });
  }
  const history = {list: () => store('readonly', s => s.getAll()), add: (c) => store('readwrite', s => s.put(c)), clear: () => store('readwrite', s => s.clear())};

  const WORDS = {refer: 'Show this to a doctor soon', routine: 'No sign that needs a doctor soon'};
  const ADVICE = {refer: 'The model found features that a doctor should look at. This is not a diagnosis: book an appointment with your doctor or a dermatologist in the coming weeks.',
                  routine: 'The model found no sign that needs a doctor soon. This is not a diagnosis: if the spot changes, bleeds, itches or you are worried, see a doctor anyway.'};
  async function showHistory() {
    const ul = document.getElementById('history'); if (!ul) return;
    const items = (await history.list()).sort((a, b) => b.time - a.time);
    ul.innerHTML = items.length ? '' : '<li>None yet.</li>';
    for (const c of items) { const li = document.createElement('li'); li.textContent = `${new Date(c.time).toLocaleString()}: ${WORDS[c.decision] || c.decision}`; ul.appendChild(li); }
  }
  async function onPhoto(file) {
    const status = document.getElementById('status'); status.textContent = 'Checking the photo...';
    const r = await predict(file);
    const cv = document.getElementById('preview'), ctx = cv.getContext('2d'), b = r.bitmap, s = Math.min(b.width, b.height);
    ctx.drawImage(b, (b.width - s) / 2, (b.height - s) / 2, s, s, 0, 0, cv.width, cv.height);
    document.getElementById('retake').hidden = r.decision !== 'retake';
    document.getElementById('result').hidden = r.decision === 'retake';
    if (r.decision === 'retake') document.getElementById('why').textContent = r.quality.reasons.join(' ');
    else {
      const dr = document.getElementById('demo-result'); dr.hidden = !r.warning; dr.textContent = r.warning ? 'Demo: ' + r.warning : '';
      const d = document.getElementById('decision'); d.textContent = WORDS[r.decision]; d.className = 'decision ' + r.decision;
      document.getElementById('advice').textContent = ADVICE[r.decision];
      document.getElementById('prob').textContent = `Model probability ${(100 * r.probability).toFixed(1)}% (the app refers at ${(100 * state.cfg.threshold).toFixed(2)}% and above, chosen for ${Math.round(100 * state.cfg.target_sensitivity)}% sensitivity on the validation photos).`;
      await history.add({time: Date.now(), probability: r.probability, decision: r.decision}); await showHistory();
    }
    status.textContent = '';
    document.getElementById(r.decision === 'retake' ? 'retake' : 'result').scrollIntoView({block: 'start'});
  }
  window.lesionApp = {ready, predict: async (image) => { const r = await predict(image); delete r.bitmap; return r; }, history, preprocess: resizeSquare, quality};
  if (typeof document !== 'undefined' && document.getElementById('photo')) {
    ready.then(() => { document.getElementById('status').textContent = ''; document.getElementById('limits').textContent = state.cfg.limits;
                       document.getElementById('model').textContent = 'Model: ' + (state.cfg.about || state.cfg.model_file);
                       const dm = document.getElementById('demo'); dm.hidden = !state.cfg.demo_warning; dm.textContent = state.cfg.demo_warning ? 'Demo: ' + state.cfg.demo_warning : '';
                       showHistory(); },
               (e) => { document.getElementById('status').textContent = 'The model could not be loaded: ' + e; });
    document.getElementById('photo').addEventListener('change', (e) => e.target.files[0] && onPhoto(e.target.files[0]));
    document.getElementById('clear').addEventListener('click', async () => { await history.clear(); await showHistory(); });
    if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js');
  }
})();
