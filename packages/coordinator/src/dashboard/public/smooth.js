// Smoothing of the dashboard's per-step curves: the exponential moving average TensorBoard draws, with its
// start debiased (the first smoothed value is the first raw one, not weight x 0). A plain script: the page
// loads it before app.js; the tests load it in a Node.js context.
'use strict';

/**
 * `ys` smoothed with weight `w` (0: unchanged, 0.99: very smooth); a null (no value at that x: an evaluation's
 * step) stays null and does not move the average.
 */
function smoothSeries(ys, w) {
  if (!(w > 0)) return ys.slice();
  const out = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) {
      out[i] = y === undefined ? null : y;
      continue;
    }
    last = last * w + (1 - w) * y;
    n++;
    out[i] = last / (1 - Math.pow(w, n));
  }
  return out;
}

globalThis.smoothSeries = smoothSeries;
