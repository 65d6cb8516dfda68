/* Draw a digit: the book's MNIST MLP and its geometry, computed live in the reader's browser.
 *
 * Plain JavaScript in float64, no library, nothing fetched: the weights (float32 values, read
 * exactly into float64) and 100 test digits are inlined in the page by
 * tools/export_live_digit.py (from weights.json). Every vector is in pixel space: 784 grey
 * levels in [0, 1], row-major, 0 the background; the page applies the model's normalisation
 * (p - mean) / std itself, so the scores are s(p) = MLP((p - mean) / std).
 *
 * At a point p it computes the scores, the probabilities, the scores' Jacobian M with respect
 * to the first layer's output (C x 64, by the chain rule through the ReLU layers), the C - 1
 * rows H^T S (S = M W1 / std the score Jacobian in pixel space; H the Helmert basis, as
 * manifoldlib) that span D_x = span{grad log p_i} = (ker G)^perp, their Gram matrix and its
 * eigen-decomposition (Jacobi), and from it an orthonormal basis of D_x (singular values
 * below 10 (C - 1) sqrt(eps) of the largest are dropped, as manifoldlib's default_rtol). All
 * of this runs in the 64 coordinates of row(W1), which contains D_x (Q1: an orthonormal basis
 * of row(W1), computed once); the orthogonal projection on D_x is Q1^T (sum_k b_k b_k^T) Q1.
 *
 * Paths (as manifoldlib.horizontal_path / across_leaves_path, steps of Euclidean length alpha
 * in pixel space):
 *   - exact: Algorithm 1 with the orthogonal projection of target - p on D_x, step
 *     min(alpha, |v|) along v, stop within the threshold, when |v| <= 1e-6 |target - p|, or
 *     after `steps` steps;
 *   - least squares: the paper's code, least squares of target - p on the C normalised
 *     gradients grad log p_i by Householder QR without pivoting (LAPACK's gels: it assumes
 *     independent columns, but they satisfy sum_i p_i grad log p_i = 0), fixed steps alpha;
 *   - across leaves: a fixed direction projected on ker G at every step;
 *   - a random horizontal walk: each step a random unit vector of D_x; the rank of the span of
 *     every D_x met so far is tracked (an upper bound on the dimension of the orbit).
 * The first layer z = W1 (p - mean) / std + b1 maps 784 pixels to 64 units, so every
 * grad log p_i lies in the row space of W1 and a horizontal path never changes the component
 * of p in ker W1 (720 dimensions): the page shows that component and its drift.
 *
 * window.manifoldlibLive is the page's API (see book/live_digit/README.md).
 */
(function () {
  "use strict";
  var source = document.getElementById("ld-weights");
  if (!source) return;
  var DATA = JSON.parse(source.textContent);
  var N = 784, SIDE = 28;
  var MEAN = DATA.normalisation.mean, STD = DATA.normalisation.std;
  var VANISHING = 1e-6; // manifoldlib.paths.VANISHING
  var RTOL = 10 * 9 * Math.sqrt(2.220446049250313e-16); // manifoldlib default_rtol(C - 1, float64)
  var DEFAULTS = { alpha: 0.1 * STD, threshold: 1.0 * STD, steps: 1000, clamp: false };

  // ---------------------------------------------------------------- the weights
  function bytes(b64) {
    var bin = atob(b64), u = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    return u;
  }
  function floats(b64) {
    var u = bytes(b64), dv = new DataView(u.buffer), n = u.length / 4, out = new Float64Array(n);
    for (var i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  var LAYERS = DATA.layers.map(function (l) {
    return { nin: l["in"], nout: l.out, W: floats(l.W), b: floats(l.b) };
  });
  var C = LAYERS[LAYERS.length - 1].nout;
  var DIGITS = (function () {
    var u = bytes(DATA.digits.pixels), out = [];
    for (var k = 0; k < u.length / N; k++) {
      var d = new Float64Array(N);
      for (var i = 0; i < N; i++) d[i] = u[k * N + i] / 255;
      out.push(d);
    }
    return out;
  })();
  var LABELS = DATA.digits.labels;

  // Helmert basis (C x (C - 1)), column k: 1/sqrt((k+1)(k+2)) on rows 0..k, -(k+1)/... on k+1.
  var HELM = (function () {
    var h = new Float64Array(C * (C - 1));
    for (var k = 0; k < C - 1; k++) {
      var n = Math.sqrt((k + 1) * (k + 2));
      for (var i = 0; i <= k; i++) h[i * (C - 1) + k] = 1 / n;
      h[(k + 1) * (C - 1) + k] = -(k + 1) / n;
    }
    return h;
  })();

  // ---------------------------------------------------------------- small linear algebra
  function dot(a, b) {
    var s = 0;
    for (var i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  }
  function norm(a) { return Math.sqrt(dot(a, a)); }
  function sub(a, b) {
    var o = new Float64Array(a.length);
    for (var i = 0; i < a.length; i++) o[i] = a[i] - b[i];
    return o;
  }
  function axpy(y, a, x) { for (var i = 0; i < y.length; i++) y[i] += a * x[i]; }

  // Cyclic Jacobi eigen-decomposition of a symmetric m x m matrix (row-major, copied).
  // Returns eigenvalues in descending order and the eigenvectors as rows.
  function eigh(A0, m) {
    var A = Float64Array.from(A0), V = new Float64Array(m * m);
    for (var i = 0; i < m; i++) V[i * m + i] = 1;
    for (var sweep = 0; sweep < 60; sweep++) {
      var off = 0, tot = 0;
      for (var p = 0; p < m; p++) for (var q = 0; q < m; q++) {
        var a2 = A[p * m + q] * A[p * m + q];
        tot += a2;
        if (p !== q) off += a2;
      }
      if (off <= 1e-30 * tot || off === 0) break;
      for (p = 0; p < m - 1; p++) {
        for (q = p + 1; q < m; q++) {
          var apq = A[p * m + q];
          if (apq === 0) continue;
          var theta = (A[q * m + q] - A[p * m + p]) / (2 * apq);
          var t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          var c = 1 / Math.sqrt(t * t + 1), s = t * c;
          for (var k = 0; k < m; k++) { // A <- A J (columns p, q)
            var akp = A[k * m + p], akq = A[k * m + q];
            A[k * m + p] = c * akp - s * akq;
            A[k * m + q] = s * akp + c * akq;
          }
          for (k = 0; k < m; k++) { // A <- J^T A (rows p, q)
            var apk = A[p * m + k], aqk = A[q * m + k];
            A[p * m + k] = c * apk - s * aqk;
            A[q * m + k] = s * apk + c * aqk;
          }
          for (k = 0; k < m; k++) { // V <- V J
            var vkp = V[k * m + p], vkq = V[k * m + q];
            V[k * m + p] = c * vkp - s * vkq;
            V[k * m + q] = s * vkp + c * vkq;
          }
        }
      }
    }
    var order = [];
    for (i = 0; i < m; i++) order.push(i);
    order.sort(function (a, b) { return A[b * m + b] - A[a * m + a]; });
    return {
      values: order.map(function (j) { return A[j * m + j]; }),
      vectors: order.map(function (j) {
        var v = new Float64Array(m);
        for (var k = 0; k < m; k++) v[k] = V[k * m + j];
        return v;
      }),
    };
  }

  // ---------------------------------------------------------------- the network
  function forward(p) {
    var h = new Float64Array(N), masks = [];
    for (var i = 0; i < N; i++) h[i] = (p[i] - MEAN) / STD;
    for (var l = 0; l < LAYERS.length; l++) {
      var L = LAYERS[l], z = new Float64Array(L.nout);
      for (var o = 0; o < L.nout; o++) {
        var s = L.b[o], base = o * L.nin;
        for (var k = 0; k < L.nin; k++) s += L.W[base + k] * h[k];
        z[o] = s;
      }
      if (l < LAYERS.length - 1) {
        var m = new Uint8Array(L.nout);
        for (o = 0; o < L.nout; o++) {
          m[o] = z[o] > 0 ? 1 : 0;
          if (!m[o]) z[o] = 0;
        }
        masks.push(m);
      }
      h = z;
    }
    return { s: h, masks: masks };
  }

  function softmax(s) {
    var mx = -Infinity, i;
    for (i = 0; i < s.length; i++) mx = Math.max(mx, s[i]);
    var e = new Float64Array(s.length), z = 0;
    for (i = 0; i < s.length; i++) { e[i] = Math.exp(s[i] - mx); z += e[i]; }
    for (i = 0; i < s.length; i++) e[i] /= z;
    return e;
  }

  // M = W_L D_{L-1} W_{L-1} ... D_1 (C x 64): the scores' Jacobian with respect to the
  // first layer's output z_1, so that S = M W_1 / std is the score Jacobian in pixel space.
  function firstLayerJacobian(f) {
    var last = LAYERS.length - 1;
    var M = Float64Array.from(LAYERS[last].W), rows = C, cols = LAYERS[last].nin;
    for (var l = last - 1; l >= 0; l--) {
      var mask = f.masks[l];
      for (var r = 0; r < rows; r++) for (var j = 0; j < cols; j++) if (!mask[j]) M[r * cols + j] = 0;
      if (l === 0) break;
      var L = LAYERS[l], next = new Float64Array(rows * L.nin);
      for (r = 0; r < rows; r++) {
        for (j = 0; j < cols; j++) {
          var a = M[r * cols + j];
          if (a === 0) continue;
          var wbase = j * L.nin, obase = r * L.nin;
          for (var k = 0; k < L.nin; k++) next[obase + k] += a * L.W[wbase + k];
        }
      }
      M = next; cols = L.nin;
    }
    return M;
  }

  // Score Jacobian S (C x 784, row-major) in pixel space (only the least squares needs it).
  function scoreJacobian(g) {
    if (g.S) return g.S;
    var W1 = LAYERS[0], S = new Float64Array(C * N), h = W1.nout;
    for (var r = 0; r < C; r++) {
      for (var j = 0; j < h; j++) {
        var a = g.M[r * h + j] / STD;
        if (a === 0) continue;
        var wbase = j * N, obase = r * N;
        for (var k = 0; k < N; k++) S[obase + k] += a * W1.W[wbase + k];
      }
    }
    g.S = S;
    return S;
  }

  /* Everything about D_x at p. Since S = M W_1 / std and W_1 = LQ Q_1 (Q_1: an orthonormal
   * basis of row(W_1), 64 x 784, computed once), the C - 1 rows H^T S are B Q_1 with
   * B = H^T M LQ / std (9 x 64): D_x is Q_1^T row(B), and all its algebra runs in the 64
   * coordinates y = Q_1 x. `basis64` holds orthonormal rows spanning row(B), largest singular
   * value first; the 784-pixel basis Q_1^T basis64 is formed only when asked (explicitBasis). */
  function geometry(p) {
    var f = forward(p), probs = softmax(f.s), M = firstLayerJacobian(f), m = C - 1, h = ROWSPACE.length;
    var H1 = LAYERS[0].nout, R = [];
    for (var k = 0; k < m; k++) {
      var hm = new Float64Array(H1);
      for (var i = 0; i < C; i++) {
        var hv = HELM[i * m + k];
        if (hv !== 0) for (var j = 0; j < H1; j++) hm[j] += hv * M[i * H1 + j];
      }
      var row = new Float64Array(h);
      for (j = 0; j < H1; j++) {
        var a0 = hm[j] / STD;
        if (a0 !== 0) for (var q = 0; q < h; q++) row[q] += a0 * LQ[j * h + q];
      }
      R.push(row);
    }
    var K = new Float64Array(m * m);
    for (var a = 0; a < m; a++) for (var b = a; b < m; b++) K[a * m + b] = K[b * m + a] = dot(R[a], R[b]);
    var E = eigh(K, m), sigmaMax = Math.sqrt(Math.max(E.values[0], 0)), basis = [], sigmas = [];
    for (k = 0; k < m; k++) {
      var sigma = Math.sqrt(Math.max(E.values[k], 0));
      if (!(sigma > RTOL * sigmaMax)) continue;
      var e = new Float64Array(h);
      for (a = 0; a < m; a++) axpy(e, E.vectors[k][a] / sigma, R[a]);
      // one more Gram-Schmidt pass: orthonormal to round-off, whatever the eigenvectors' error
      for (j = 0; j < basis.length; j++) axpy(e, -dot(basis[j], e), basis[j]);
      var en = norm(e);
      for (i = 0; i < h; i++) e[i] /= en;
      basis.push(e);
      sigmas.push(sigma);
    }
    return { scores: f.s, probs: probs, M: M, basis64: basis, sigmas: sigmas, masks: f.masks, dim: basis.length };
  }

  function coords(v) { // Q_1 v (64)
    var y = new Float64Array(ROWSPACE.length);
    for (var k = 0; k < ROWSPACE.length; k++) y[k] = dot(ROWSPACE[k], v);
    return y;
  }
  function lift(y) { // Q_1^T y (784)
    var out = new Float64Array(N);
    for (var k = 0; k < ROWSPACE.length; k++) if (y[k] !== 0) axpy(out, y[k], ROWSPACE[k]);
    return out;
  }
  function explicitBasis(g) {
    if (!g.basis) g.basis = g.basis64.map(lift);
    return g.basis;
  }
  // The orthogonal projection of v (784) on D_x.
  function projectOn(g, v) {
    var y = coords(v), z = new Float64Array(y.length);
    for (var k = 0; k < g.basis64.length; k++) axpy(z, dot(g.basis64[k], y), g.basis64[k]);
    return lift(z);
  }

  // The paper's least squares (LAPACK gels): Q Q^T d for the Householder QR, without pivoting,
  // of the n x C matrix whose columns are grad log p_i / |grad log p_i|.
  function leastSquares(g, d) {
    var cols = [], mean = new Float64Array(N), i, k, S = scoreJacobian(g);
    for (i = 0; i < C; i++) for (k = 0; k < N; k++) mean[k] += g.probs[i] * S[i * N + k];
    for (i = 0; i < C; i++) {
      var col = new Float64Array(N);
      for (k = 0; k < N; k++) col[k] = S[i * N + k] - mean[k];
      var n = norm(col);
      if (n > 0) for (k = 0; k < N; k++) col[k] /= n;
      cols.push(col);
    }
    var refl = [];
    for (var j = 0; j < C; j++) {
      var x = cols[j], sq = 0;
      for (k = j; k < N; k++) sq += x[k] * x[k];
      var alpha = -(x[j] >= 0 ? 1 : -1) * Math.sqrt(sq);
      var v = new Float64Array(N);
      for (k = j; k < N; k++) v[k] = x[k];
      v[j] -= alpha;
      var vn = 0;
      for (k = j; k < N; k++) vn += v[k] * v[k];
      vn = Math.sqrt(vn);
      if (vn === 0) { refl.push(null); continue; }
      for (k = j; k < N; k++) v[k] /= vn;
      refl.push(v);
      for (var c2 = j; c2 < C; c2++) reflect(v, cols[c2], j);
    }
    var y = Float64Array.from(d);
    for (j = 0; j < C; j++) if (refl[j]) reflect(refl[j], y, j); // y = Q^T d
    for (k = C; k < N; k++) y[k] = 0;
    for (j = C - 1; j >= 0; j--) if (refl[j]) reflect(refl[j], y, j); // Q (Q^T d)[:C]
    return y;
  }
  function reflect(v, x, from) {
    var s = 0, k;
    for (k = from; k < N; k++) s += v[k] * x[k];
    s *= 2;
    for (k = from; k < N; k++) x[k] -= s * v[k];
  }

  // ---------------------------------------------------------------- the first layer
  // Orthonormal basis of the row space of W1 (in pixel space the first layer is W1 / std:
  // the same row space), by modified Gram-Schmidt applied twice.
  var ROWSPACE = (function () {
    var L = LAYERS[0], q = [];
    for (var o = 0; o < L.nout; o++) {
      var r = Float64Array.from(L.W.subarray(o * L.nin, (o + 1) * L.nin)), n0 = norm(r);
      for (var pass = 0; pass < 2; pass++) for (var k = 0; k < q.length; k++) axpy(r, -dot(q[k], r), q[k]);
      var n = norm(r);
      if (n > 1e-10 * n0) {
        for (var i = 0; i < N; i++) r[i] /= n;
        q.push(r);
      }
    }
    return q;
  })();
  // LQ = W_1 Q_1^T (64 x 64, row-major): W_1 = LQ Q_1 on the row space.
  var LQ = (function () {
    var L = LAYERS[0], h = ROWSPACE.length, out = new Float64Array(L.nout * h);
    for (var o = 0; o < L.nout; o++) {
      var row = L.W.subarray(o * L.nin, (o + 1) * L.nin);
      for (var k = 0; k < h; k++) out[o * h + k] = dot(row, ROWSPACE[k]);
    }
    return out;
  })();
  function kerW1(v) {
    var out = Float64Array.from(v);
    for (var k = 0; k < ROWSPACE.length; k++) axpy(out, -dot(ROWSPACE[k], v), ROWSPACE[k]);
    return out;
  }

  // ---------------------------------------------------------------- paths
  function sameRegion(a, b) {
    for (var l = 0; l < a.length; l++) for (var i = 0; i < a[l].length; i++) if (a[l][i] !== b[l][i]) return false;
    return true;
  }
  function mulberry32(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      var t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function gaussian(rand) {
    var u = 1 - rand(), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  function options(opts) {
    var o = {};
    opts = opts || {};
    Object.keys(DEFAULTS).forEach(function (k) { o[k] = opts[k] === undefined ? DEFAULTS[k] : opts[k]; });
    if (!(o.alpha > 0)) throw new Error("alpha must be positive, got " + o.alpha);
    if (!(o.threshold > 0)) throw new Error("threshold must be positive, got " + o.threshold);
    if (!(Number.isInteger(o.steps) && o.steps > 0)) throw new Error("steps must be a positive integer, got " + o.steps);
    o.seed = opts.seed === undefined ? 0 : opts.seed;
    return o;
  }

  /* A path as a stepper: next() makes one step and returns false once the path has stopped.
   * kind: "exact" | "lsq" (towards `target`), "across" (fixed `target` = direction), "walk". */
  function Stepper(kind, start, target, opts) {
    var o = options(opts), x = Float64Array.from(start), origin = Float64Array.from(start);
    var rand = mulberry32(o.seed), self = this;
    var toward = kind === "exact" || kind === "lsq";
    var distance = function (y) { return toward ? norm(sub(target, y)) : norm(sub(y, origin)); };
    var g0 = geometry(x);
    this.kind = kind;
    this.points = [Float64Array.from(x)];
    this.distances = [distance(x)];
    this.offShare = [];
    this.kerW1Drift = [0];
    this.predictions = [argmax(g0.probs)];
    this.probs = [g0.probs];
    this.crossings = 0;
    this.regions = [0];
    this.span = []; // orthonormal basis of the span of every D_x met (random walk)
    this.ranks = [];
    this.stopReason = toward && this.distances[0] < o.threshold ? "reached" : "max_steps";
    this.done = this.stopReason === "reached";
    this.options = o;
    var g = g0;
    if (kind === "walk") { grow(g.basis64); this.ranks.push(this.span.length); }

    function grow(basis) {
      basis.forEach(function (e) {
        var r = Float64Array.from(e);
        for (var pass = 0; pass < 2; pass++) for (var k = 0; k < self.span.length; k++) axpy(r, -dot(self.span[k], r), self.span[k]);
        var n = norm(r);
        if (n > 1e-6 && self.span.length < r.length) {
          for (var i = 0; i < r.length; i++) r[i] /= n;
          self.span.push(r);
        }
      });
    }

    this.next = function () {
      if (self.done) return false;
      var v, ref, len;
      if (toward) {
        var d = sub(target, x);
        v = kind === "exact" ? projectOn(g, d) : leastSquares(g, d);
        ref = norm(d);
      } else if (kind === "across") {
        v = sub(target, projectOn(g, target));
        ref = norm(target);
      } else {
        var z = new Float64Array(ROWSPACE.length);
        for (var k = 0; k < g.basis64.length; k++) axpy(z, gaussian(rand), g.basis64[k]);
        v = lift(z);
        ref = norm(v);
      }
      var vn = norm(v);
      if (!(vn > VANISHING * ref)) {
        self.stopReason = "vanishing direction";
        self.done = true;
        return false;
      }
      len = kind === "exact" ? Math.min(o.alpha, vn) : o.alpha;
      var pv = projectOn(g, v);
      self.offShare.push(norm(sub(v, pv)) / vn);
      var scale = len / Math.max(vn, 1e-30);
      for (var i = 0; i < N; i++) {
        var xi = x[i] + scale * v[i];
        x[i] = o.clamp ? Math.min(1, Math.max(0, xi)) : xi;
      }
      var gn = geometry(x);
      if (!sameRegion(g.masks, gn.masks)) self.crossings++;
      g = gn;
      self.points.push(Float64Array.from(x));
      var dist = distance(x);
      self.distances.push(dist);
      self.kerW1Drift.push(norm(kerW1(sub(x, origin))));
      self.predictions.push(argmax(g.probs));
      self.probs.push(g.probs);
      self.regions.push(self.crossings);
      if (kind === "walk") { grow(g.basis64); self.ranks.push(self.span.length); }
      if (toward && dist < o.threshold) { self.stopReason = "reached"; self.done = true; }
      else if (self.points.length - 1 >= o.steps) { self.done = true; }
      return !self.done;
    };
    this.result = function () {
      return {
        kind: kind,
        points: self.points.map(function (q) { return Array.from(q); }),
        distances: self.distances.slice(),
        stopReason: self.stopReason,
        steps: self.points.length - 1,
        offShare: self.offShare.slice(),
        kerW1Drift: self.kerW1Drift.slice(),
        predictions: self.predictions.slice(),
        crossings: self.crossings,
        ranks: self.ranks.slice(),
      };
    };
  }
  function argmax(a) {
    var best = 0;
    for (var i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
    return best;
  }
  function runToEnd(st) { while (st.next()) { /* step */ } return st.result(); }

  function pixelsArg(p, what) {
    if (!p || p.length !== N) throw new Error(what + " must have " + N + " numbers (28 x 28, row-major)");
    var out = new Float64Array(N);
    for (var i = 0; i < N; i++) {
      out[i] = +p[i];
      if (!isFinite(out[i])) throw new Error(what + " has a non-finite entry at " + i);
    }
    return out;
  }

  // ---------------------------------------------------------------- the public API
  var API = {
    version: 1,
    model: {
      name: "ReLU MLP 784-64-64-10 (chapter 3)",
      checkpoint: DATA.checkpoint.config_key + ", epoch " + DATA.checkpoint.epoch,
      testAccuracy: DATA.test_accuracy,
      weightsSha256: DATA.weights_sha256,
      normalisation: DATA.normalisation,
      rankW1: ROWSPACE.length,
      defaults: DEFAULTS,
    },
    digits: {
      count: DIGITS.length,
      labels: LABELS.slice(),
      testIndex: DATA.digits.test_index.slice(),
      get: function (i) { return Array.from(DIGITS[i]); },
    },
    predict: function (pixels) { return Array.from(geometry(pixelsArg(pixels, "pixels")).probs); },
    scores: function (pixels) { return Array.from(forward(pixelsArg(pixels, "pixels")).s); },
    tangentBasis: function (pixels) {
      return explicitBasis(geometry(pixelsArg(pixels, "pixels"))).map(function (e) { return Array.from(e); });
    },
    project: function (pixels, v) {
      var g = geometry(pixelsArg(pixels, "pixels"));
      return Array.from(projectOn(g, pixelsArg(v, "v")));
    },
    kernelW1Component: function (v) { return Array.from(kerW1(pixelsArg(v, "v"))); },
    horizontalPath: function (src, tgt, opts) {
      return runToEnd(new Stepper("exact", pixelsArg(src, "source"), pixelsArg(tgt, "target"), opts));
    },
    leastSquaresPath: function (src, tgt, opts) {
      return runToEnd(new Stepper("lsq", pixelsArg(src, "source"), pixelsArg(tgt, "target"), opts));
    },
    acrossLeavesPath: function (start, direction, opts) {
      return runToEnd(new Stepper("across", pixelsArg(start, "start"), pixelsArg(direction, "direction"), opts));
    },
    randomWalk: function (start, opts) {
      return runToEnd(new Stepper("walk", pixelsArg(start, "start"), null, opts));
    },
    // Mean time of one exact path step (ms), measured here.
    benchmarkStep: function (n) {
      n = n || 20;
      var st = new Stepper("exact", DIGITS[0], DIGITS[55], { steps: n + 1 });
      st.next();
      var t0 = performance.now();
      for (var k = 0; k < n; k++) st.next();
      return { ms_per_step: (performance.now() - t0) / n, steps: n };
    },
  };
  window.manifoldlibLive = API;

  // ================================================================ the page
  var root = document.getElementById("ld-root");
  if (!root) return;
  var $ = function (sel) { return root.querySelector(sel); };
  var pad = $(".ld-pad"), pctx = pad.getContext("2d");
  var ui = {
    pixels: new Float64Array(N),
    cursor: [14, 14],
    pen: false,
    drawing: false,
    geo: null,
    target: 55,
    dirSeed: 0,
    runner: null,
    result: {},
    redrawMs: [],
    frame: 0,
  };

  // digit picker and target picker
  var pick = $(".ld-pick"), tsel = $(".ld-target");
  LABELS.forEach(function (lab, i) {
    var o = document.createElement("option");
    o.value = String(i);
    o.textContent = "test digit #" + DATA.digits.test_index[i] + " (a " + lab + ")";
    pick.appendChild(o);
    tsel.appendChild(o.cloneNode(true));
  });
  tsel.value = String(ui.target);
  $(".ld-checkpoint").textContent =
    API.model.checkpoint + "; test accuracy " + DATA.test_accuracy.correct + "/" + DATA.test_accuracy.total +
    " on the embedded MNIST test digits; rank W\u2081 = " + ROWSPACE.length;

  // ---- images
  function grey(canvas, p) {
    var c = canvas.getContext("2d"), im = c.createImageData(SIDE, SIDE);
    for (var i = 0; i < N; i++) {
      var v = Math.round(255 * (1 - Math.min(1, Math.max(0, p[i]))));
      im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = v;
      im.data[4 * i + 3] = 255;
    }
    c.putImageData(im, 0, 0);
  }
  // Diverging map for directions: blue negative, red positive, white zero (own scale).
  function signed(canvas, v, scale) {
    var c = canvas.getContext("2d"), im = c.createImageData(SIDE, SIDE), m = scale || 0;
    if (!m) for (var i = 0; i < N; i++) m = Math.max(m, Math.abs(v[i]));
    for (i = 0; i < N; i++) {
      var t = m > 0 ? Math.max(-1, Math.min(1, v[i] / m)) : 0, o = 4 * i;
      im.data[o] = t < 0 ? Math.round(255 * (1 + t)) : 255;
      im.data[o + 1] = Math.round(255 * (1 - Math.abs(t)));
      im.data[o + 2] = t > 0 ? Math.round(255 * (1 - t)) : 255;
      im.data[o + 3] = 255;
    }
    c.putImageData(im, 0, 0);
  }
  function drawPad() {
    var im = pctx.createImageData(SIDE, SIDE);
    for (var i = 0; i < N; i++) {
      var v = Math.round(255 * (1 - ui.pixels[i]));
      im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = v;
      im.data[4 * i + 3] = 255;
    }
    pctx.putImageData(im, 0, 0);
    var ring = $(".ld-cursor");
    ring.style.left = (100 * ui.cursor[0] / SIDE) + "%";
    ring.style.top = (100 * ui.cursor[1] / SIDE) + "%";
    ring.classList.toggle("ld-pen", ui.pen);
  }

  // ---- drawing: a soft round brush, about 2.5 pixels wide, as MNIST strokes
  function paint(cx, cy) {
    for (var r = Math.floor(cy - 2); r <= Math.ceil(cy + 2); r++) {
      for (var c = Math.floor(cx - 2); c <= Math.ceil(cx + 2); c++) {
        if (r < 0 || c < 0 || r >= SIDE || c >= SIDE) continue;
        var d = Math.hypot(c + 0.5 - cx, r + 0.5 - cy), a = Math.max(0, Math.min(1, 1.6 - d));
        var i = r * SIDE + c;
        ui.pixels[i] = Math.max(ui.pixels[i], a);
      }
    }
  }
  function stroke(a, b) {
    var n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / 0.35));
    for (var k = 1; k <= n; k++) paint(a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n);
  }
  function padCoords(evt) {
    var r = pad.getBoundingClientRect();
    return [((evt.clientX - r.left) / r.width) * SIDE, ((evt.clientY - r.top) / r.height) * SIDE];
  }
  var last = null, pending = false;
  pad.addEventListener("pointerdown", function (e) {
    e.preventDefault();
    stopRun();
    pad.setPointerCapture && pad.setPointerCapture(e.pointerId);
    ui.drawing = true;
    last = padCoords(e);
    paint(last[0], last[1]);
    changed();
  });
  pad.addEventListener("pointermove", function (e) {
    if (!ui.drawing) return;
    e.preventDefault();
    var q = padCoords(e);
    stroke(last, q);
    last = q;
    changed();
  });
  ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (t) {
    pad.addEventListener(t, function () { ui.drawing = false; last = null; });
  });
  pad.addEventListener("keydown", function (e) {
    var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      var a = ui.cursor.slice(), step = e.shiftKey ? 3 : 1;
      ui.cursor = [Math.max(0, Math.min(SIDE - 1, a[0] + step * moves[e.key][0])),
        Math.max(0, Math.min(SIDE - 1, a[1] + step * moves[e.key][1]))];
      if (ui.pen) { stroke([a[0] + 0.5, a[1] + 0.5], [ui.cursor[0] + 0.5, ui.cursor[1] + 0.5]); changed(); }
      else drawPad();
    } else if (e.key === " " || e.key === "Enter") {
      e.preventDefault();
      ui.pen = !ui.pen;
      if (ui.pen) { paint(ui.cursor[0] + 0.5, ui.cursor[1] + 0.5); changed(); } else drawPad();
    } else if (e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      clearPad();
    }
  });
  function clearPad() {
    stopRun();
    ui.pixels = new Float64Array(N);
    changed();
  }
  $(".ld-clear").addEventListener("click", clearPad);
  pick.addEventListener("change", function () {
    stopRun();
    ui.pixels = Float64Array.from(DIGITS[+pick.value]);
    changed();
  });
  tsel.addEventListener("change", function () { ui.target = +tsel.value; changed(); });
  $(".ld-dir").addEventListener("change", function () { ui.dirSeed++; changed(); });

  // ---- the panels that follow the drawing (redrawn at most once per animation frame)
  function changed() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; redraw(); });
  }
  var probRows = [], basisCanvases = [];
  (function build() {
    var box = $(".ld-probs");
    for (var c = 0; c < C; c++) {
      var row = document.createElement("div");
      row.className = "ld-prob";
      row.innerHTML = "<span class='ld-cls'>" + c + "</span><span class='ld-bar'><i></i></span><span class='ld-val'></span>";
      box.appendChild(row);
      probRows.push(row);
    }
    var grid = $(".ld-basis");
    for (var k = 0; k < C - 1; k++) {
      var fig = document.createElement("figure"), cv = document.createElement("canvas");
      cv.width = cv.height = SIDE;
      cv.setAttribute("role", "img");
      fig.appendChild(cv);
      var cap = document.createElement("figcaption");
      fig.appendChild(cap);
      grid.appendChild(fig);
      basisCanvases.push(cv);
    }
  })();

  function fmt(x, d) { return x.toFixed(d === undefined ? 3 : d); }
  function redraw() {
    var t0 = performance.now();
    drawPad();
    var g = geometry(ui.pixels);
    ui.geo = g;
    var pred = argmax(g.probs);
    probRows.forEach(function (row, c) {
      row.querySelector("i").style.width = (100 * g.probs[c]).toFixed(1) + "%";
      row.querySelector(".ld-val").textContent = fmt(g.probs[c]);
      row.classList.toggle("ld-top", c === pred);
    });
    $(".ld-pred").textContent = "The model predicts " + pred + " (p = " + fmt(g.probs[pred]) + ").";
    basisCanvases.forEach(function (cv, k) {
      var cap = cv.nextSibling;
      if (k < g.dim) {
        signed(cv, explicitBasis(g)[k]);
        cap.textContent = "\u03c3 = " + g.sigmas[k].toPrecision(2);
        cv.setAttribute("aria-label", "direction " + (k + 1) + " of D_x");
      } else {
        signed(cv, new Float64Array(N));
        cap.textContent = "\u2014";
      }
    });
    $(".ld-dim").textContent = "dim D\u2093 = " + g.dim;
    // the split of the direction towards the target digit
    var mode = $(".ld-dir").value, d;
    if (mode === "random") {
      var rand = mulberry32(1000 + ui.dirSeed);
      d = new Float64Array(N);
      for (var r = 0; r < N; r++) d[r] = gaussian(rand) / 28; // unit expected length
    } else d = mode === "ink" ? Float64Array.from(ui.pixels) : sub(DIGITS[ui.target], ui.pixels);
    $(".ld-dcap").textContent = { target: "d = target \u2212 x", random: "d: random", ink: "d = x" }[mode];
    var pd = projectOn(g, d), kd = sub(d, pd);
    var m = 0;
    for (var i = 0; i < N; i++) m = Math.max(m, Math.abs(d[i]));
    grey($(".ld-tgt"), DIGITS[ui.target]);
    signed($(".ld-d"), d, m);
    signed($(".ld-pd"), pd, m);
    signed($(".ld-kd"), kd, m);
    var nd = norm(d), npd = norm(pd), nkd = norm(kd);
    $(".ld-split").textContent =
      "|d| = " + fmt(nd) + ": its D\u2093 part |Pd| = " + fmt(npd) + " (" + fmt(nd > 0 ? (100 * npd * npd) / (nd * nd) : 0, 2) +
      "% of |d|\u00b2), its ker G part = " + fmt(nkd) + ".";
    var kw = kerW1(sub(DIGITS[ui.target], ui.pixels));
    grey($(".ld-kerx"), kerW1(ui.pixels).map(function (v) { return 0.5 + v; }));
    $(".ld-inv").textContent =
      "The part of target \u2212 x in ker W\u2081 has length " + fmt(norm(kw)) + ": no horizontal path from this drawing " +
      "gets closer than that to the target (the first-layer invariant).";
    ui.redrawMs.push(performance.now() - t0);
    if (ui.redrawMs.length > 200) ui.redrawMs.shift();
    root.dataset.redraws = String(+(root.dataset.redraws || 0) + 1);
  }

  // ---- paths, computed a few steps per animation frame
  var pathCanvas = { exact: $(".ld-pe"), lsq: $(".ld-pl") }, curve = $(".ld-curve"), slider = $(".ld-scrub");
  function stopRun() {
    if (ui.runner) { ui.runner.stopped = true; ui.runner = null; }
    root.dataset.running = "0";
  }
  function start(kind) {
    stopRun();
    var steps = Math.max(1, Math.min(5000, parseInt($(".ld-steps").value, 10) || 300));
    var alpha = Math.max(1e-4, parseFloat($(".ld-alpha").value) || 0.05);
    var steppers = [];
    if (kind === "towards") {
      steppers.push(new Stepper("exact", ui.pixels, DIGITS[ui.target], { steps: steps, alpha: alpha }));
      steppers.push(new Stepper("lsq", ui.pixels, DIGITS[ui.target], { steps: steps, alpha: alpha }));
    } else if (kind === "across") {
      var rand = mulberry32(ui.frame + 1), dir = new Float64Array(N);
      for (var i = 0; i < N; i++) dir[i] = gaussian(rand);
      steppers.push(new Stepper("across", ui.pixels, dir, { steps: steps, alpha: alpha }));
    } else {
      steppers.push(new Stepper("walk", ui.pixels, null, { steps: steps, alpha: alpha, seed: ui.frame + 1 }));
    }
    ui.frame++;
    var run = { kind: kind, steppers: steppers, stopped: false, t0: performance.now(), stepMs: 0, n: 0 };
    ui.runner = run;
    root.dataset.running = "1";
    root.dataset.stop = "";
    function tick() {
      if (run.stopped) return;
      var t1 = performance.now(), busy = true;
      while (busy && performance.now() - t1 < 24) {
        busy = false;
        steppers.forEach(function (st) {
          if (st.next()) busy = true;
          run.n++;
        });
      }
      run.stepMs += performance.now() - t1;
      show(run, -1);
      if (busy) requestAnimationFrame(tick);
      else {
        ui.result = run;
        ui.runner = null;
        root.dataset.running = "0";
        root.dataset.stop = steppers.map(function (s) { return s.stopReason; }).join(",");
        slider.max = String(steppers[0].points.length - 1);
        slider.value = slider.max;
        slider.disabled = false;
      }
    }
    slider.disabled = true;
    requestAnimationFrame(tick);
  }
  function show(run, at) {
    var st = run.steppers, a = st[0], k = at < 0 ? a.points.length - 1 : Math.min(at, a.points.length - 1);
    grey(pathCanvas.exact, a.points[k]);
    var b = st[1];
    if (b) grey(pathCanvas.lsq, b.points[Math.min(k, b.points.length - 1)]);
    else grey(pathCanvas.lsq, new Float64Array(N));
    $(".ld-pe-cap").textContent = { towards: "Algorithm 1, exact projection", across: "across leaves", walk: "random horizontal walk" }[run.kind];
    $(".ld-pl-cap").textContent = b ? "paper's least squares" : "";
    var lines = [];
    function describe(s, name, j) {
      j = Math.min(j, s.points.length - 1);
      var off = s.offShare.length ? Math.max.apply(null, s.offShare.slice(0, Math.max(1, j))) : 0;
      var txt = name + ": step " + j + ", " + (s.kind === "exact" || s.kind === "lsq" ? "distance to target " : "distance from start ") +
        fmt(s.distances[j]) + " (from " + fmt(s.distances[0]) + "), prediction " + s.predictions[j] +
        " (p = " + fmt(s.probs[j][s.predictions[j]]) + "), largest off-D\u2093 share of a step " + off.toExponential(1) +
        ", ker W\u2081 drift " + s.kerW1Drift[j].toExponential(1) + ", region crossings " + s.regions[j];
      if (s.kind === "walk") txt += ", rank of the span of the D\u2093 met " + s.ranks[j] + " (of at most " + ROWSPACE.length + ")";
      if (s.done && j === s.points.length - 1) txt += "; stopped: " + s.stopReason;
      lines.push(txt + ".");
    }
    describe(a, $(".ld-pe-cap").textContent, k);
    if (b) describe(b, "least squares", k);
    $(".ld-path-status").textContent = lines.join(" ");
    plot(run, k);
  }
  function plot(run, k) {
    var c = curve.getContext("2d"), w = curve.width, h = curve.height;
    c.fillStyle = "#fff";
    c.fillRect(0, 0, w, h);
    var st = run.steppers, label;
    var series = st.map(function (s) {
      if (run.kind === "walk") return s.ranks;
      if (run.kind === "towards") return s.distances.map(function (v) { return v / s.distances[0]; });
      return s.distances;
    });
    var top = 0, len = 1;
    series.forEach(function (s) { s.forEach(function (v) { top = Math.max(top, v); }); len = Math.max(len, s.length - 1); });
    if (run.kind === "walk") {
      top = Math.max(top, 10);
      label = "rank of the span of the D\u2093 met (top: " + fmt(top, 0) + ")";
    } else if (run.kind === "towards") {
      top = Math.max(top, 1);
      label = "distance / initial distance (top: " + fmt(top, 2) + "); gold: exact, red: least squares";
    } else {
      label = "distance from the start (top: " + fmt(top, 2) + ")";
    }
    var colors = ["#c98f00", "#c2185b"];
    series.forEach(function (s, j) {
      c.strokeStyle = colors[j];
      c.lineWidth = 2;
      c.beginPath();
      s.forEach(function (v, t) {
        var X = 8 + (t / len) * (w - 16), Y = h - 22 - (top > 0 ? v / top : 0) * (h - 44);
        if (t === 0) c.moveTo(X, Y); else c.lineTo(X, Y);
      });
      c.stroke();
    });
    c.fillStyle = "#222";
    c.font = "14px sans-serif";
    c.fillText(label, 8, 15);
    c.fillText("step 0 \u2026 " + len, 8, h - 5);
    var X = 8 + (k / len) * (w - 16);
    c.strokeStyle = "#888";
    c.lineWidth = 1;
    c.beginPath(); c.moveTo(X, 20); c.lineTo(X, h - 20); c.stroke();
  }
  $(".ld-run-towards").addEventListener("click", function () { start("towards"); });
  $(".ld-run-across").addEventListener("click", function () { start("across"); });
  $(".ld-run-walk").addEventListener("click", function () { start("walk"); });
  $(".ld-stop").addEventListener("click", stopRun);
  slider.addEventListener("input", function () { if (ui.result.steppers) show(ui.result, +slider.value); });

  // ---- hooks for tests and curious readers
  API.ui = {
    state: function () {
      var g = ui.geo, r = ui.result;
      return {
        pixels: Array.from(ui.pixels),
        probs: g ? Array.from(g.probs) : null,
        dim: g ? g.dim : null,
        basisSignature: g ? explicitBasis(g).map(function (e) { return e[300] + e[400]; }) : null,
        target: ui.target,
        running: !!ui.runner,
        stop: r.steppers ? r.steppers.map(function (s) { return s.stopReason; }) : null,
        redraws: +(root.dataset.redraws || 0),
      };
    },
    // Mean time of a full redraw (probabilities, D_x basis images, split, invariant) after
    // a short stroke is added, as while drawing (ms).
    benchmarkRedraw: function (n) {
      n = n || 20;
      var t0 = performance.now();
      for (var k = 0; k < n; k++) {
        stroke([6 + (k % 14), 8], [7 + (k % 14), 20]);
        redraw();
      }
      return { ms_per_redraw: (performance.now() - t0) / n, redraws: n };
    },
  };
  ui.pixels = Float64Array.from(DIGITS[0]);
  pick.value = "0";
  redraw();
  root.dataset.ready = "1";
})();
