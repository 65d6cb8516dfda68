/* A live foliation explorer: chapter 4's toy classifiers, computed in the reader's browser.
 *
 * Plain JavaScript, no library, nothing fetched: the weights are inlined in the page by
 * tools/export_toy_explorer.py (from weights.json). For a point x of the plane it evaluates
 * the network's scores s(x) and their gradients (forward-mode derivatives through the
 * layers), the probabilities p = softmax(s), the local data matrix
 * G(x) = sum_i p_i grad log p_i grad log p_i^T, the distribution D_x = span{grad log p_i}
 * = span{grad(s_i - s_C)} and ker G = D_x^perp. It draws the leaf through x (the integral
 * curve of D_x, unoriented, when dim D_x = 1), the kernel direction, the activation-region
 * boundaries of a ReLU network, and runs Algorithm 1 towards a target twice: with the exact
 * orthogonal projection on D_x (as manifoldlib.horizontal_path: step min(alpha, |v|) along
 * v, stop when v vanishes or within the threshold) and with the paper's least squares (the C
 * normalised gradients as columns, solved by a QR that assumes independent columns, as
 * LAPACK's gels does; fixed steps alpha v / |v|).
 *
 * window.foliationExplorer is a hook for tests: select(), point(), target(), finish(),
 * state(), signature(), benchmarkDrag().
 */
(function () {
  "use strict";
  var root = document.getElementById("fx-root");
  var source = document.getElementById("fx-weights");
  if (!root || !source) return;
  var W = JSON.parse(source.textContent);
  var S = W.paths; // step_size, max_steps, threshold, box
  var BOX = S.box;
  var VANISHING = 1e-6; // as manifoldlib.paths.VANISHING
  var RANK_TOL = 1e-9; // relative eigenvalue below which D_x loses a dimension
  var COLORS = [[59, 117, 175], [214, 69, 65], [80, 160, 90]];
  var KERNEL = "#6a1b9a"; // ker G's segment: a colour no class uses

  var plane = root.querySelector(".fx-plane");
  var curve = root.querySelector(".fx-curve");
  var status = root.querySelector(".fx-status");
  var dataSel = root.querySelector(".fx-data");
  var actBtn = root.querySelector(".fx-act");
  var regionsBox = root.querySelector(".fx-regions");
  var ctx = plane.getContext("2d");
  var cctx = curve.getContext("2d");

  var st = {
    dataset: "moons",
    activation: "relu",
    net: null,
    A: null,
    B: null,
    leaf: null,
    exact: null,
    lsq: null,
    reveal: 0,
    layers: {},
    cursor: [0, 0],
    ticks: null,
  };

  // ---------------------------------------------------------------- the network
  // Scores s (C), their gradients gx, gy (d s_i / d x_1, d s_i / d x_2) and the activation
  // pattern (a 32-bit code of which hidden ReLUs are on).
  function evaluate(net, x, y) {
    var h = [x, y], hx = [1, 0], hy = [0, 1], code = 0, bit = 0;
    var L = net.layers.length;
    for (var l = 0; l < L; l++) {
      var Wl = net.layers[l].W, bl = net.layers[l].b, m = bl.length;
      var z = new Array(m), zx = new Array(m), zy = new Array(m);
      for (var i = 0; i < m; i++) {
        var row = Wl[i], a = bl[i], ax = 0, ay = 0;
        for (var k = 0; k < row.length; k++) {
          a += row[k] * h[k];
          ax += row[k] * hx[k];
          ay += row[k] * hy[k];
        }
        z[i] = a; zx[i] = ax; zy[i] = ay;
      }
      if (l < L - 1) {
        for (var j = 0; j < m; j++) {
          var d;
          if (net.activation === "relu") {
            var on = z[j] > 0;
            d = on ? 1 : 0;
            z[j] = on ? z[j] : 0;
            if (on) code = bit < 32 ? (code | (1 << bit)) >>> 0 : (Math.imul(code, 31) + bit) >>> 0;
            bit++;
          } else {
            var t = Math.tanh(z[j]);
            d = 1 - t * t;
            z[j] = t;
          }
          zx[j] *= d; zy[j] *= d;
        }
      }
      h = z; hx = zx; hy = zy;
    }
    return { s: h, gx: hx, gy: hy, code: code };
  }

  function softmax(s) {
    var mx = Math.max.apply(null, s), e = s.map(function (v) { return Math.exp(v - mx); });
    var z = e.reduce(function (a, b) { return a + b; }, 0);
    return e.map(function (v) { return v / z; });
  }

  // Eigen-decomposition of a symmetric 2 x 2 matrix [[a, b], [b, c]]: l1 >= l2, unit e1.
  function eig2(a, b, c) {
    var m = 0.5 * (a + c), r = Math.hypot(0.5 * (a - c), b);
    var l1 = m + r, l2 = m - r, v1 = [b, l1 - a], v2 = [l1 - c, b];
    var e = Math.hypot(v1[0], v1[1]) >= Math.hypot(v2[0], v2[1]) ? v1 : v2;
    var n = Math.hypot(e[0], e[1]);
    e = n > 0 ? [e[0] / n, e[1] / n] : (a >= c ? [1, 0] : [0, 1]);
    return { l1: l1, l2: l2, e1: e };
  }

  // Everything the explorer needs at one point.
  function geometry(net, x, y) {
    var f = evaluate(net, x, y), C = f.s.length, p = softmax(f.s);
    var mx = 0, my = 0;
    for (var i = 0; i < C; i++) { mx += p[i] * f.gx[i]; my += p[i] * f.gy[i]; }
    var G = [0, 0, 0]; // G11, G12, G22
    var grads = [];
    for (var i2 = 0; i2 < C; i2++) {
      var gx = f.gx[i2] - mx, gy = f.gy[i2] - my; // grad log p_i
      grads.push([gx, gy]);
      G[0] += p[i2] * gx * gx; G[1] += p[i2] * gx * gy; G[2] += p[i2] * gy * gy;
    }
    // D_x from the C - 1 rows grad(s_i - s_C), as manifoldlib does (no n x n factorisation).
    var R = [];
    for (var r = 0; r < C - 1; r++) R.push([f.gx[r] - f.gx[C - 1], f.gy[r] - f.gy[C - 1]]);
    var P = [0, 0, 0];
    R.forEach(function (v) { P[0] += v[0] * v[0]; P[1] += v[0] * v[1]; P[2] += v[1] * v[1]; });
    var E = eig2(P[0], P[1], P[2]);
    var dim = E.l1 <= 0 ? 0 : E.l2 > RANK_TOL * E.l1 ? 2 : 1;
    var u = null;
    if (C === 2) {
      var n = Math.hypot(R[0][0], R[0][1]);
      u = n > 0 ? [R[0][0] / n, R[0][1] / n] : null;
    } else if (dim === 1) {
      u = E.e1;
    }
    return { p: p, G: G, grads: grads, dim: dim, u: u, code: f.code, s: f.s };
  }

  // The orthogonal projection of d on D_x.
  function project(g, d) {
    if (g.dim === 2) return [d[0], d[1]];
    if (g.dim === 0 || !g.u) return [0, 0];
    var c = g.u[0] * d[0] + g.u[1] * d[1];
    return [c * g.u[0], c * g.u[1]];
  }

  // The paper's least squares: min_c |A c - d| with the C normalised gradients as the columns
  // of A (2 x C), by Householder QR without pivoting, which treats the columns as
  // independent. Returns A c = Q Q^T d. Here the columns are dependent (sum_i p_i grad log p_i
  // = 0) but a 2 x 2 Q is the whole plane, so the "projection" is d itself: the step leaves D_x.
  function leastSquares(g, d) {
    var a = g.grads.map(function (v) {
      var n = Math.hypot(v[0], v[1]);
      return n > 0 ? [v[0] / n, v[1] / n] : [0, 0];
    });
    var a0 = a[0], alpha = -(a0[0] >= 0 ? 1 : -1) * Math.hypot(a0[0], a0[1]);
    var h = [a0[0] - alpha, a0[1]], hn = h[0] * h[0] + h[1] * h[1];
    // H = I - 2 h h^T / |h|^2 is Q (2 x 2, orthogonal): Q Q^T d = H H d.
    function H(v) {
      if (hn === 0) return [v[0], v[1]];
      var c = (2 * (h[0] * v[0] + h[1] * v[1])) / hn;
      return [v[0] - c * h[0], v[1] - c * h[1]];
    }
    var rank = a.length >= 2 ? 2 : 1; // a full-rank QR keeps min(n, C) columns of Q
    var q = H(d); // Q^T d
    if (rank < 2) q[1] = 0;
    return H(q);
  }

  // ---------------------------------------------------------------- paths and leaves
  function path(net, A, B, rule) {
    var x = [A[0], A[1]], pts = [[x[0], x[1]]];
    var dist = [Math.hypot(B[0] - x[0], B[1] - x[1])];
    var stop = dist[0] < S.threshold ? "reached" : "max steps", offShare = [];
    for (var t = 1; t <= S.max_steps && stop !== "reached"; t++) {
      var g = geometry(net, x[0], x[1]), d = [B[0] - x[0], B[1] - x[1]];
      var v = rule === "exact" ? project(g, d) : leastSquares(g, d);
      var vn = Math.hypot(v[0], v[1]), dn = Math.hypot(d[0], d[1]);
      if (vn <= VANISHING * dn) { stop = "vanishing direction"; break; }
      var len = rule === "exact" ? Math.min(S.step_size, vn) : S.step_size;
      var pv = project(g, v);
      offShare.push(Math.hypot(v[0] - pv[0], v[1] - pv[1]) / vn);
      x = [x[0] + (len / vn) * v[0], x[1] + (len / vn) * v[1]];
      pts.push([x[0], x[1]]);
      dist.push(Math.hypot(B[0] - x[0], B[1] - x[1]));
      if (dist[dist.length - 1] < S.threshold) stop = "reached";
    }
    var length = 0;
    for (var k = 1; k < pts.length; k++) length += Math.hypot(pts[k][0] - pts[k - 1][0], pts[k][1] - pts[k - 1][1]);
    return { points: pts, distances: dist, stop: stop, steps: pts.length - 1, length: length, offShare: offShare };
  }

  // The leaf through x when dim D_x = 1: the integral curve of u = grad(s_1 - s_2)/|...|,
  // both ways (midpoint rule), inside the box. `piece` marks the points in x's region.
  function leafThrough(net, x0) {
    var g0 = geometry(net, x0[0], x0[1]);
    if (g0.dim !== 1) return null;
    var h = 0.02, halves = [];
    [1, -1].forEach(function (sign) {
      var x = [x0[0], x0[1]], pts = [], prev = g0.u;
      for (var k = 0; k < 500; k++) {
        var g1 = geometry(net, x[0], x[1]);
        if (!g1.u) break;
        var u1 = orient(g1.u, prev);
        var g2 = geometry(net, x[0] + 0.5 * sign * h * u1[0], x[1] + 0.5 * sign * h * u1[1]);
        if (!g2.u) break;
        var u2 = orient(g2.u, u1);
        x = [x[0] + sign * h * u2[0], x[1] + sign * h * u2[1]];
        prev = u2;
        if (Math.abs(x[0]) > BOX * 1.05 || Math.abs(x[1]) > BOX * 1.05) break;
        pts.push([x[0], x[1], evaluate(net, x[0], x[1]).code === g0.code ? 1 : 0]);
      }
      halves.push(pts);
    });
    var pts = halves[1].reverse().concat([[x0[0], x0[1], 1]], halves[0]);
    return { points: pts, kernel: [-g0.u[1], g0.u[0]], u: g0.u };
  }

  // Unoriented: keep the direction closest to the previous one.
  function orient(u, prev) {
    return u[0] * prev[0] + u[1] * prev[1] < 0 ? [-u[0], -u[1]] : u;
  }

  // ---------------------------------------------------------------- drawing
  var N = plane.width;
  function px(p) { return [((p[0] + BOX) / (2 * BOX)) * N, ((BOX - p[1]) / (2 * BOX)) * N]; }
  function world(evt) {
    var r = plane.getBoundingClientRect();
    var u = (evt.clientX - r.left) / r.width, v = (evt.clientY - r.top) / r.height;
    return [(2 * u - 1) * BOX, (1 - 2 * v) * BOX];
  }

  // Class colours (probability-weighted) and region boundaries, rendered once per model.
  function backgrounds(key, net) {
    if (st.layers[key]) return st.layers[key];
    var M = 240, bg = document.createElement("canvas"), bd = document.createElement("canvas");
    bg.width = bg.height = bd.width = bd.height = M;
    var ib = bg.getContext("2d").createImageData(M, M), id = bd.getContext("2d").createImageData(M, M);
    var codes = new Uint32Array(M * M);
    for (var j = 0; j < M; j++) {
      for (var i = 0; i < M; i++) {
        var x = ((i + 0.5) / M) * 2 * BOX - BOX, y = BOX - ((j + 0.5) / M) * 2 * BOX;
        var f = evaluate(net, x, y), p = softmax(f.s), c = [0, 0, 0];
        for (var k = 0; k < p.length; k++) for (var q = 0; q < 3; q++) c[q] += p[k] * COLORS[k][q];
        var o = 4 * (j * M + i);
        for (var q2 = 0; q2 < 3; q2++) ib.data[o + q2] = Math.round(255 - 0.45 * (255 - c[q2]));
        ib.data[o + 3] = 255;
        codes[j * M + i] = f.code;
      }
    }
    for (var j2 = 0; j2 < M; j2++) {
      for (var i2 = 0; i2 < M; i2++) {
        var here = codes[j2 * M + i2];
        var edge = (i2 + 1 < M && codes[j2 * M + i2 + 1] !== here) || (j2 + 1 < M && codes[(j2 + 1) * M + i2] !== here);
        if (edge) {
          var o2 = 4 * (j2 * M + i2);
          id.data[o2] = id.data[o2 + 1] = id.data[o2 + 2] = 70;
          id.data[o2 + 3] = 90;
        }
      }
    }
    bg.getContext("2d").putImageData(ib, 0, 0);
    bd.getContext("2d").putImageData(id, 0, 0);
    st.layers[key] = { bg: bg, bd: bd };
    return st.layers[key];
  }

  function polyline(c, pts, upto) {
    c.beginPath();
    for (var k = 0; k < Math.min(pts.length, upto); k++) {
      var q = px(pts[k]);
      if (k === 0) c.moveTo(q[0], q[1]); else c.lineTo(q[0], q[1]);
    }
    c.stroke();
  }

  function marker(p, color, r, star) {
    var q = px(p);
    ctx.fillStyle = color; ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
    ctx.beginPath();
    if (star) {
      for (var k = 0; k < 10; k++) {
        var rr = k % 2 ? r * 0.45 : r, a = (Math.PI * k) / 5 - Math.PI / 2;
        ctx.lineTo(q[0] + rr * Math.cos(a), q[1] + rr * Math.sin(a));
      }
      ctx.closePath();
    } else {
      ctx.arc(q[0], q[1], r, 0, 2 * Math.PI);
    }
    ctx.fill(); ctx.stroke();
  }

  function draw() {
    var key = st.dataset + "-" + st.activation, layers = backgrounds(key, st.net);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(layers.bg, 0, 0, N, N);
    if (regionsBox.checked && st.activation === "relu") ctx.drawImage(layers.bd, 0, 0, N, N);
    st.net.points.forEach(function (p) {
      var q = px(p);
      ctx.fillStyle = "rgb(" + COLORS[p[2]].join(",") + ")";
      ctx.fillRect(q[0] - 1.5, q[1] - 1.5, 3, 3);
    });
    if (st.leaf) {
      ctx.strokeStyle = "#111"; ctx.lineWidth = 1.6; ctx.setLineDash([]);
      polyline(ctx, st.leaf.points, Infinity);
      // the leaf piece: the part of the curve in the point's activation region
      ctx.lineWidth = 3.5;
      var piece = [], started = false;
      st.leaf.points.forEach(function (p) {
        if (p[2]) { piece.push(p); started = true; } else if (started && piece.length) { polyline(ctx, piece, Infinity); piece = []; }
      });
      if (piece.length) polyline(ctx, piece, Infinity);
      var k = st.leaf.kernel, a = [st.A[0] - 0.5 * k[0], st.A[1] - 0.5 * k[1]], b = [st.A[0] + 0.5 * k[0], st.A[1] + 0.5 * k[1]];
      // ker G: violet on a white casing (no class colour is violet)
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 5.5;
      polyline(ctx, [a, b], 2);
      ctx.strokeStyle = KERNEL; ctx.lineWidth = 3;
      polyline(ctx, [a, b], 2);
    }
    var upto = st.reveal;
    if (st.lsq) {
      ctx.strokeStyle = "#c2185b"; ctx.lineWidth = 2.5; ctx.setLineDash([6, 4]);
      polyline(ctx, st.lsq.points, upto + 1);
      ctx.setLineDash([]);
    }
    if (st.exact) {
      ctx.strokeStyle = "#e0a800"; ctx.lineWidth = 3;
      polyline(ctx, st.exact.points, upto + 1);
    }
    if (st.A) marker(st.A, "#e0a800", 6, false);
    if (st.B) marker(st.B, "#e0a800", 10, true);
    if (document.activeElement === plane) {
      var cq = px(st.cursor);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.setLineDash([]);
      ctx.strokeRect(cq[0] - 7, cq[1] - 7, 14, 14);
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1;
      ctx.strokeRect(cq[0] - 9, cq[1] - 9, 18, 18);
    }
    drawCurve();
  }

  function drawCurve() {
    var w = curve.width, h = curve.height, m = 30;
    cctx.fillStyle = "#fff"; cctx.fillRect(0, 0, w, h);
    cctx.fillStyle = "#333"; cctx.font = "11px sans-serif";
    if (!st.exact) {
      cctx.fillText("distance to the target along the paths (after a target is chosen)", 8, h / 2);
      return;
    }
    var d0 = st.exact.distances[0];
    var Lmax = Math.max(st.exact.length, st.lsq.length, S.step_size);
    var sx = function (L) { return m + (L / Lmax) * (w - m - 8); };
    var sy = function (d) { return h - 18 - (d / d0) * (h - 30); };
    cctx.strokeStyle = "#bbb"; cctx.lineWidth = 1;
    cctx.beginPath(); cctx.moveTo(m, 8); cctx.lineTo(m, h - 18); cctx.lineTo(w - 4, h - 18); cctx.stroke();
    // The axis is distance / initial distance: its "1" is at the initial distance d0.
    st.ticks = { one: sy(d0), zero: sy(0), start: sy(st.exact.distances[0]) };
    cctx.fillText("1", m - 12, st.ticks.one + 4); cctx.fillText("0", m - 12, st.ticks.zero + 4);
    cctx.fillText("path length " + Lmax.toFixed(2), w - 110, h - 4);
    cctx.save(); cctx.translate(10, h - 22); cctx.rotate(-Math.PI / 2); cctx.fillText("distance / initial", 0, 0); cctx.restore();
    [[st.lsq, "#c2185b"], [st.exact, "#e0a800"]].forEach(function (pc) {
      var P = pc[0], L = 0, n = Math.min(P.points.length, st.reveal + 1);
      cctx.strokeStyle = pc[1]; cctx.lineWidth = 2; cctx.beginPath();
      for (var k = 0; k < n; k++) {
        if (k > 0) L += Math.hypot(P.points[k][0] - P.points[k - 1][0], P.points[k][1] - P.points[k - 1][1]);
        var X = sx(L), Y = sy(P.distances[k]);
        if (k === 0) cctx.moveTo(X, Y); else cctx.lineTo(X, Y);
      }
      cctx.stroke();
    });
  }

  function fmt(v, n) { return v.toFixed(n === undefined ? 2 : n); }

  function describe() {
    if (!st.A) { status.textContent = "Click a point of the plane (then a target)."; return; }
    var g = geometry(st.net, st.A[0], st.A[1]);
    var ev = eig2(g.G[0], g.G[1], g.G[2]);
    var txt = "x = (" + fmt(st.A[0]) + ", " + fmt(st.A[1]) + "): p = (" + g.p.map(function (v) { return fmt(v); }).join(", ") +
      "), eigenvalues of G " + ev.l1.toExponential(2) + ", " + Math.max(ev.l2, 0).toExponential(1) + "; dim D_x = " + g.dim + ". ";
    if (st.leaf) {
      txt += "ker G along (" + fmt(st.leaf.kernel[0]) + ", " + fmt(st.leaf.kernel[1]) + "). ";
      if (st.activation === "tanh") txt += "tanh: no regions; the leaf bends everywhere. ";
    } else if (g.dim === 2) {
      txt += "D_x is the whole plane: one leaf, no kernel. ";
    }
    if (st.exact) {
      var e = st.exact, q = st.lsq;
      var qoff = q.offShare.length ? q.offShare.reduce(function (a, b) { return Math.max(a, b); }, 0) : 0;
      txt += "Exact: " + e.stop + " after path length " + fmt(e.length) + " (" + e.steps + " steps), distance " +
        fmt(e.distances[0]) + " → " + fmt(e.distances[e.distances.length - 1]) + ". Least squares: " + q.stop +
        " after length " + fmt(q.length) + ", final distance " + fmt(q.distances[q.distances.length - 1]) +
        "; largest share of a step outside D_x " + fmt(qoff) + ".";
    } else {
      txt += "Click a target.";
    }
    status.textContent = txt;
  }

  function publish() {
    root.dataset.model = st.dataset + "-" + st.activation;
    root.dataset.exactSteps = st.exact ? String(st.exact.steps) : "";
    root.dataset.lsqSteps = st.lsq ? String(st.lsq.steps) : "";
    root.dataset.exactStop = st.exact ? st.exact.stop : "";
  }

  // ---------------------------------------------------------------- state changes
  function select(dataset, activation) {
    st.dataset = dataset || st.dataset;
    st.activation = activation || st.activation;
    st.net = W.models[st.dataset + "-" + st.activation];
    dataSel.value = st.dataset;
    actBtn.textContent = "activation: " + (st.activation === "relu" ? "ReLU" : "tanh");
    actBtn.setAttribute("aria-pressed", st.activation === "tanh" ? "true" : "false");
    recompute(true);
  }

  function recompute(full) {
    st.leaf = st.A ? leafThrough(st.net, st.A) : null;
    if (st.A && st.B) {
      st.exact = path(st.net, st.A, st.B, "exact");
      st.lsq = path(st.net, st.A, st.B, "lsq");
      if (full) st.reveal = Math.max(st.exact.points.length, st.lsq.points.length);
    } else {
      st.exact = st.lsq = null;
    }
    publish(); describe(); draw();
  }

  var anim = null;
  function animate() {
    if (anim) cancelAnimationFrame(anim);
    st.reveal = 0;
    var total = Math.max(st.exact.points.length, st.lsq.points.length);
    function frame() {
      st.reveal += 8;
      draw();
      if (st.reveal < total) anim = requestAnimationFrame(frame); else anim = null;
    }
    anim = requestAnimationFrame(frame);
  }

  function setPoint(p) { st.A = p; st.B = null; recompute(true); }
  function setTarget(p) { st.B = p; recompute(false); animate(); }

  // ---------------------------------------------------------------- input
  var dragging = false, pending = null;
  plane.addEventListener("pointerdown", function (evt) {
    var p = world(evt);
    if (st.A) {
      var a = px(st.A), r = plane.getBoundingClientRect(), s = N / r.width;
      var q = [(evt.clientX - r.left) * s, (evt.clientY - r.top) * s];
      if (Math.hypot(q[0] - a[0], q[1] - a[1]) < 14 * s) {
        dragging = true;
        plane.setPointerCapture(evt.pointerId);
        return;
      }
    }
    if (!st.A || st.B) setPoint(p); else setTarget(p);
  });
  plane.addEventListener("pointermove", function (evt) {
    if (!dragging) return;
    pending = world(evt);
    requestAnimationFrame(function () {
      if (!pending) return;
      st.A = pending; pending = null;
      recompute(true);
    });
  });
  function endDrag() { dragging = false; }
  // Keyboard: the plane takes the focus; arrows move a cursor (Shift: 5x), Enter or Space
  // acts as a click there (a point, then a target), Escape clears.
  plane.addEventListener("keydown", function (evt) {
    var d = (evt.shiftKey ? 5 : 1) * BOX / 24, c = st.cursor;
    var moves = { ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, d], ArrowDown: [0, -d] };
    if (moves[evt.key]) {
      st.cursor = [
        Math.max(-BOX, Math.min(BOX, c[0] + moves[evt.key][0])),
        Math.max(-BOX, Math.min(BOX, c[1] + moves[evt.key][1])),
      ];
      draw();
    } else if (evt.key === "Enter" || evt.key === " ") {
      if (!st.A || st.B) setPoint(st.cursor.slice()); else setTarget(st.cursor.slice());
    } else if (evt.key === "Escape") {
      st.A = st.B = null; recompute(true);
    } else {
      return;
    }
    evt.preventDefault();
  });
  plane.addEventListener("focus", draw);
  plane.addEventListener("blur", draw);
  plane.addEventListener("pointerup", endDrag);
  plane.addEventListener("pointercancel", endDrag);
  dataSel.addEventListener("change", function () { select(dataSel.value, null); });
  actBtn.addEventListener("click", function () { select(null, st.activation === "relu" ? "tanh" : "relu"); });
  regionsBox.addEventListener("change", draw);
  root.querySelector(".fx-reset").addEventListener("click", function () { st.A = st.B = null; recompute(true); });

  // ---------------------------------------------------------------- test hook
  window.foliationExplorer = {
    select: function (dataset, activation) { select(dataset, activation); return this.state(); },
    point: function (x, y) { setPoint([x, y]); return this.state(); },
    target: function (x, y) { setTarget([x, y]); return this.state(); },
    finish: function () {
      if (anim) cancelAnimationFrame(anim);
      anim = null;
      if (st.exact) st.reveal = Math.max(st.exact.points.length, st.lsq.points.length);
      draw();
      return this.state();
    },
    state: function () {
      return {
        model: st.dataset + "-" + st.activation,
        settings: S,
        point: st.A,
        target: st.B,
        leaf: st.leaf,
        exact: st.exact,
        lsq: st.lsq,
        geometry: st.A ? geometry(st.net, st.A[0], st.A[1]) : null,
        ticks: st.ticks,
        cursor: st.cursor,
      };
    },
    signature: function () {
      var d = ctx.getImageData(0, 0, N, N).data, h = 0;
      for (var k = 0; k < d.length; k += 7) h = (Math.imul(h, 31) + d[k]) >>> 0;
      return h;
    },
    // Time n redraws as when dragging the point (leaf, both paths, picture).
    benchmarkDrag: function (n) {
      var A0 = st.A || [-1.5, 0.5], t0 = performance.now();
      for (var k = 0; k < n; k++) {
        var a = (2 * Math.PI * k) / n;
        st.A = [A0[0] + 0.3 * Math.cos(a), A0[1] + 0.3 * Math.sin(a)];
        recompute(true);
      }
      var ms = (performance.now() - t0) / n;
      st.A = A0; recompute(true);
      return { frames: n, ms_per_frame: ms, fps: 1000 / ms };
    },
  };

  select("moons", "relu");
  root.dataset.ready = "1";
})();
