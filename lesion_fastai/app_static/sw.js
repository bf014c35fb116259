// Service worker: every file of the app is cached at install, so the app opens and works without a network.
// Answers only this origin's requests; responses carry the cross-origin isolation headers that WebAssembly threads need.
const CACHE = 'lesion-check-{{version}}', FILES = {{files}};
self.addEventListener('install', (e) => e.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting())));
self.addEventListener('activate', (e) => e.waitUntil(caches.keys()
  .then((ks) => Promise.all(ks.filter((k) => k.startsWith('lesion-check-') && k !== CACHE).map((k) => caches.delete(k))))
  .then(() => self.clients.claim())));
function isolated(r) {
  if (!r || r.status === 0) return r;
  const h = new Headers(r.headers);
  h.set('Cross-Origin-Opener-Policy', 'same-origin'); h.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(r.body, {status: r.status, statusText: r.statusText, headers: h});
}
self.addEventListener('fetch', (e) => {
  if (new URL(e.request.url).origin !== self.location.origin || e.request.method !== 'GET') return;
  e.respondWith(caches.open(CACHE).then((c) => c.match(e.request, {ignoreSearch: true}))
    .then((hit) => hit || fetch(e.request)).then(isolated));
});
