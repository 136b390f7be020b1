// The node-sim workload: Node.js (V8) running a generated particle
// simulation: positions, velocities and masses in Float64Arrays, grid cells
// and counts in Int32Arrays, a history of per-step statistics in plain
// arrays of numbers and small objects.  Prints "ready" after the warm-up
// steps, then keeps stepping.  Every number comes from a seeded PRNG.
// SPDX-License-Identifier: MIT
'use strict';
const seed = Number(process.argv[2] || 1) >>> 0;
const N = Number(process.argv[3] || 400000);
let s = seed || 1;
function rand() { // xorshift32
  s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
  return s / 4294967296;
}
const G = 256;
const x = new Float64Array(N), y = new Float64Array(N);
const vx = new Float64Array(N), vy = new Float64Array(N);
const m = new Float32Array(N), cell = new Int32Array(N);
const count = new Int32Array(G * G), start = new Int32Array(G * G + 1);
const order = new Int32Array(N);
const density = new Float64Array(G * G);
for (let i = 0; i < N; i++) {
  // clustered: a few blobs plus a uniform background
  const c = Math.floor(rand() * 8);
  if (c < 6) {
    x[i] = 0.15 + 0.1 * c + 0.05 * (rand() - 0.5);
    y[i] = 0.5 + 0.2 * Math.sin(c) + 0.05 * (rand() - 0.5);
  } else { x[i] = rand(); y[i] = rand(); }
  vx[i] = 0.001 * (rand() - 0.5); vy[i] = 0.001 * (rand() - 0.5);
  m[i] = c < 6 ? 1 + c : 0.5;
}
const history = [];
function step(t) {
  count.fill(0);
  for (let i = 0; i < N; i++) {
    let gx = Math.floor(x[i] * G), gy = Math.floor(y[i] * G);
    gx = gx < 0 ? 0 : gx >= G ? G - 1 : gx; gy = gy < 0 ? 0 : gy >= G ? G - 1 : gy;
    cell[i] = gy * G + gx; count[cell[i]]++;
  }
  start[0] = 0;
  for (let c = 0; c < G * G; c++) start[c + 1] = start[c] + count[c];
  const fill = start.slice(0, G * G);
  for (let i = 0; i < N; i++) order[fill[cell[i]]++] = i;
  for (let c = 0; c < G * G; c++) {
    let mass = 0;
    for (let k = start[c]; k < start[c + 1]; k++) mass += m[order[k]];
    density[c] = 0.9 * density[c] + 0.1 * mass;
  }
  let e = 0;
  for (let i = 0; i < N; i++) {
    const c = cell[i], gx = c % G, gy = (c - gx) / G;
    const l = density[gy * G + (gx > 0 ? gx - 1 : gx)], r = density[gy * G + (gx < G - 1 ? gx + 1 : gx)];
    const d = density[(gy > 0 ? gy - 1 : gy) * G + gx], u = density[(gy < G - 1 ? gy + 1 : gy) * G + gx];
    vx[i] += 1e-7 * (r - l); vy[i] += 1e-7 * (u - d);
    x[i] += vx[i]; y[i] += vy[i];
    if (x[i] < 0 || x[i] > 1) vx[i] = -vx[i];
    if (y[i] < 0 || y[i] > 1) vy[i] = -vy[i];
    e += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i]);
  }
  const busiest = [];
  for (let c = 0; c < G * G; c += 97) busiest.push(count[c]);
  history.push({ step: t, energy: e, cells: busiest, mean: Array.from(density.subarray(0, 64)) });
}
let t = 0;
for (; t < 60; t++) step(t);
process.stdout.write(`ready ${N} ${history.length}\n`);
for (;;) step(t++);
