import { loadKernel } from "../src/index.js";
const k = await loadKernel({ shared: false });
const N = 512, P = 4096;
const old = k.alloc(N * P, 64), cur = k.alloc((N + 1) * P, 64), out = k.alloc(N * P, 64), len = k.alloc(N * 4, 64);
const o = k.bytes(old), c = k.bytes(cur).subarray(P);
for (let i = 0; i < o.length; i++) o[i] = (i * 2654435761) >>> 24;
for (const [name, cnt] of [["1%", 41], ["10%", 410], ["0", 0]] as const) {
  c.set(o);
  for (let p = 0; p < N; p++) for (let t = 0; t < cnt; t++) { const at = p * P + Math.floor(Math.random() * P); c[at] ^= 0x5a; }
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    let tot = 0;
    for (let it = 0; it < 20; it++) tot = k.raw.xbzrleEncodePages(old.ptr, cur.ptr + P, N, out.ptr, len.ptr);
    const dt = (performance.now() - t0) / 20;
    console.log(name, rep, (dt * 1000 / N).toFixed(3), "us/page", tot / N);
  }
}
