// The book's own script (loaded on every page through _config.yml's html_js_files).
//
// Formulas on narrow screens: after MathJax has typeset the page (and on every resize), an
// inline formula wider than its column gets the class `wide-inline` (book.css: it scrolls in
// place instead of running out of the column), and every formula that scrolls (inline or
// displayed) can take the keyboard focus, so that it can be scrolled without a mouse.
// `data-formulas-checked` on <html> says the check has run (the browser tests wait for it).
(function () {
  "use strict";
  function column(m) {
    return m.parentElement.closest("p, li, dd, dt, td, th, figcaption, div, section") || document.body;
  }
  function check() {
    const all = document.querySelectorAll("main mjx-container");
    let wide = 0;
    all.forEach(function (m) {
      if (m.getAttribute("display") !== "true") {
        m.classList.remove("wide-inline");
        if (m.getBoundingClientRect().width > column(m).getBoundingClientRect().width + 1) {
          m.classList.add("wide-inline");
          wide += 1;
        }
      }
      if (m.scrollWidth > m.clientWidth + 1) {
        m.setAttribute("tabindex", "0");
        m.classList.add("scrolls");
      } else if (m.classList.contains("scrolls")) {
        m.removeAttribute("tabindex");
        m.classList.remove("scrolls");
      }
    });
    document.documentElement.dataset.formulasChecked = String(wide);
  }
  function whenTypeset(tries) {
    const mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(check);
    } else if (!document.querySelector("main .math")) {
      document.documentElement.dataset.formulasChecked = "0";
    } else if (tries > 0) {
      setTimeout(function () { whenTypeset(tries - 1); }, 100);
    }
  }
  // Widgets rendered from saved state (chapter 17) come without accessible names: the number
  // boxes' own labels are empty and hidden, the slider's handle and the frames have none.
  // Name them from the text the reader sees next to them.
  function text(e) {
    return e ? e.textContent.replace(/\s+/g, " ").trim() : "";
  }
  function nameWidgets() {
    document.querySelectorAll("main .jupyter-widgets input:not([aria-label])").forEach(function (i) {
      const own = i.id ? text(document.querySelector('label[for="' + i.id + '"]')) : "";
      const box = i.closest(".widget-inline-hbox");
      const before = box && box.previousElementSibling ? text(box.previousElementSibling) : "";
      i.setAttribute("aria-label", own || before || "value");
    });
    document.querySelectorAll("main .noUi-handle:not([aria-label])").forEach(function (h) {
      const slider = h.closest(".widget-slider");
      const label = slider ? text(slider.querySelector(".widget-label")) : "";
      h.setAttribute("aria-label", label || "frame of the path");
    });
    document.querySelectorAll("main img.widget-image:not([alt])").forEach(function (img) {
      const box = img.parentElement;
      const caption = box ? text(box.querySelector(".widget-html")) : "";
      img.setAttribute("alt", caption ? "Frame of the path: " + caption : "A frame of the path");
    });
  }
  let pending = false;
  new MutationObserver(function () {
    if (pending) return;
    pending = true;
    Promise.resolve().then(function () { pending = false; nameWidgets(); });
  }).observe(document.documentElement, { childList: true, subtree: true });

  // Chapter 17's path gallery opens a strip by its #fragment (CSS :target). Opening one
  // replaces the page's history entry instead of adding one (Back leaves the page, not the
  // last thumbnail), and each strip gets a link back to its thumbnail in the grid.
  function galleryPlace() {
    const gallery = document.getElementById("path-gallery");
    if (!gallery || gallery.dataset.placeKept) return;
    gallery.dataset.placeKept = "1";
    gallery.addEventListener("click", function (evt) {
      const a = evt.target.closest('a[href^="#path-gallery"], a.pg-back');
      if (!a) return;
      evt.preventDefault();
      location.replace(a.getAttribute("href"));
    });
    gallery.querySelectorAll(".pg-strip[id]").forEach(function (strip) {
      const back = document.createElement("a");
      back.href = "#pg-thumb-" + strip.id;
      back.className = "pg-back";
      back.textContent = "\u2191 back to the grid";
      const thumb = gallery.querySelector('.pg-grid a[href="#' + strip.id + '"]');
      if (thumb) thumb.id = "pg-thumb-" + strip.id;
      strip.insertBefore(back, strip.firstChild);
    });
  }
  document.addEventListener("DOMContentLoaded", galleryPlace);

  // Figures full size: every output figure (and every figure of a page) opens, on click, tap,
  // Enter or Space, in a modal <dialog> at its natural size (scrolling where the screen is
  // smaller); Escape, the close button or a click beside it closes it and gives the focus
  // back to the figure. Images of widgets and of HTML outputs (chapter 17's frames and
  // gallery) are not figures and are left alone.
  let zoomDialog = null;
  function figureDialog() {
    if (zoomDialog) return zoomDialog;
    const d = document.createElement("dialog");
    d.className = "fig-dialog";
    d.setAttribute("aria-label", "Figure at full size");
    d.innerHTML =
      '<div class="fig-dialog-bar"><span class="fig-dialog-title"></span>' +
      '<button type="button" class="fig-dialog-zoom" aria-pressed="false">2\u00d7</button>' +
      '<button type="button" class="fig-dialog-close" aria-label="Close the full-size figure">\u00d7</button></div>' +
      '<div class="fig-dialog-body" tabindex="0"><img alt=""><p></p></div>';
    d.querySelector(".fig-dialog-close").addEventListener("click", function () { d.close(); });
    // twice the natural size, for the smallest labels (a 6 pt legend is 8 px at natural size)
    const zoom = d.querySelector(".fig-dialog-zoom");
    zoom.addEventListener("click", function () {
      const big = d.querySelector(".fig-dialog-body img");
      const on = zoom.getAttribute("aria-pressed") !== "true";
      zoom.setAttribute("aria-pressed", String(on));
      big.style.width = (on ? 2 : 1) * (d.naturalWidth || big.naturalWidth) + "px";
    });
    d.addEventListener("click", function (evt) {
      if (evt.target === d) d.close();  // a click on the backdrop
    });
    d.addEventListener("close", function () {
      if (d.opener && document.contains(d.opener)) d.opener.focus();
    });
    document.body.appendChild(d);
    zoomDialog = d;
    return d;
  }
  function openFigure(img) {
    const d = figureDialog();
    const big = d.querySelector(".fig-dialog-body img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.style.width = img.naturalWidth ? img.naturalWidth + "px" : "";
    d.naturalWidth = img.naturalWidth;
    d.querySelector(".fig-dialog-zoom").setAttribute("aria-pressed", "false");
    const fig = img.closest("figure");
    const number = fig ? text(fig.querySelector(".caption-number")) : "";
    const caption = fig ? text(fig.querySelector(".caption-text")) : "";
    d.querySelector(".fig-dialog-title").textContent = number || "Figure";
    d.querySelector(".fig-dialog-body p").textContent = caption;
    d.opener = img;
    d.showModal();
    d.querySelector(".fig-dialog-close").focus();
  }
  function markWide(img) {  // wider than its column: book.css lets it start further left
    const fig = img.closest("figure") || img.parentElement;
    img.classList.toggle("fig-wide", img.naturalWidth > fig.clientWidth + 1);
  }
  function zoomableFigures() {
    document.querySelectorAll("main figure img, main .cell_output img").forEach(function (img) {
      if (img.classList.contains("fig-zoomable")) return;
      if (img.closest(".jupyter-widgets, .widget-area, .text_html, dialog, a")) return;
      img.classList.add("fig-zoomable");
      img.setAttribute("tabindex", "0");
      img.setAttribute("role", "button");
      img.setAttribute("aria-haspopup", "dialog");
      img.title = "Show this figure full size";
      if (img.complete) markWide(img);
      else img.addEventListener("load", function () { markWide(img); });
      img.addEventListener("click", function () { openFigure(img); });
      img.addEventListener("keydown", function (evt) {
        if (evt.key === "Enter" || evt.key === " ") {
          evt.preventDefault();
          openFigure(img);
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", zoomableFigures);

  // docutils marks a bibliography as role="list" whose entries carry role="doc-biblioentry",
  // which is not a list item, so a screen reader announces an empty list (axe-core:
  // aria-required-children, critical). Make the entries list items.
  function citationLists() {
    document.querySelectorAll('.citation-list[role="list"] > .citation').forEach(function (c) {
      c.setAttribute("role", "listitem");
    });
  }
  document.addEventListener("DOMContentLoaded", citationLists);

  // Search results (search.html): Sphinx's searchtools.js cuts each snippet from the text of
  // the page's [role="main"], which in this theme also holds the article header's buttons
  // (".ipynb", ".pdf", "Contents") and the maths as TeX source ("\\(\\mathcal{D}_x\\)"). Take the
  // article only, without headers, buttons and the on-page contents, and write each formula
  // as plain text ("D_x"). searchtools.js is loaded after this script, so patch it once the
  // page is parsed (before its own DOMContentLoaded handler runs the search).
  const TEX_SYMBOLS = {
    alpha: "\u03b1", beta: "\u03b2", gamma: "\u03b3", delta: "\u03b4", epsilon: "\u03b5",
    varepsilon: "\u03b5", eta: "\u03b7", theta: "\u03b8", kappa: "\u03ba", lambda: "\u03bb",
    mu: "\u03bc", nu: "\u03bd", pi: "\u03c0", rho: "\u03c1", sigma: "\u03c3", tau: "\u03c4",
    phi: "\u03c6", varphi: "\u03c6", chi: "\u03c7", psi: "\u03c8", omega: "\u03c9",
    Gamma: "\u0393", Delta: "\u0394", Theta: "\u0398", Lambda: "\u039b", Sigma: "\u03a3",
    Phi: "\u03a6", Psi: "\u03a8", Omega: "\u03a9", le: "\u2264", leq: "\u2264",
    ge: "\u2265", geq: "\u2265", ne: "\u2260", neq: "\u2260", approx: "\u2248",
    sim: "~", in: "\u2208", notin: "\u2209", subseteq: "\u2286", subset: "\u2282",
    cap: "\u2229", cup: "\u222a", perp: "\u22a5", times: "\u00d7", cdot: "\u00b7",
    cdots: "\u22ef", ldots: "\u2026", dots: "\u2026", nabla: "\u2207", partial: "\u2202",
    sum: "\u03a3", prod: "\u03a0", int: "\u222b", infty: "\u221e", to: "\u2192",
    rightarrow: "\u2192", mapsto: "\u21a6", top: "\u1d40", langle: "\u27e8",
    rangle: "\u27e9", pm: "\u00b1", sqrt: "\u221a", circ: "\u2218", otimes: "\u2297",
    oplus: "\u2295", forall: "\u2200", exists: "\u2203", mid: "|", lVert: "\u2016",
    rVert: "\u2016", Vert: "\u2016", "|": "\u2016",
  };
  ["ker", "log", "exp", "det", "dim", "min", "max", "sin", "cos", "arccos", "tr", "sup", "inf",
   "lim", "arg"].forEach(function (f) { TEX_SYMBOLS[f] = f; });
  function texToText(tex) {
    return tex
      .replace(/^\s*(\\\(|\\\[|\$\$?)/, "").replace(/(\\\)|\\\]|\$\$?)\s*$/, "")
      .replace(/\\(begin|end)\{[^}]*\}/g, " ")
      .replace(/\\(left|right|big|Big|bigg|Bigg)(?![a-zA-Z])/g, "")
      .replace(/\\(,|;|:|!|quad|qquad)(?![a-zA-Z])/g, " ")
      .replace(/\\([a-zA-Z]+|\|)/g, function (all, name) {
        return Object.prototype.hasOwnProperty.call(TEX_SYMBOLS, name) ? TEX_SYMBOLS[name] : "";
      })
      .replace(/[{}]/g, "").replace(/&/g, " ").replace(/\\\\/g, "; ")
      .replace(/\s+/g, " ").trim();
  }
  function searchText(htmlString, anchor) {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    const article = doc.querySelector("article.bd-article") || doc.querySelector('[role="main"]');
    if (!article) return "";
    article.querySelectorAll(
      ".headerlink, script, style, .header-article, .bd-sidebar-secondary, .prev-next-area, " +
      "button, .toggle-hidden, .cell_input .copybtn, mjx-container, .pst-scrollable-table-container caption"
    ).forEach(function (e) { e.remove(); });
    article.querySelectorAll(".math").forEach(function (m) {
      m.textContent = texToText(m.textContent);
    });
    const part = anchor ? article.querySelector(anchor) : null;
    return ((part || article).textContent || "").replace(/\s+/g, " ");
  }
  window.bookSearchText = searchText;  // for tests/test_browser.py
  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Search !== "undefined" && Search.htmlToText) {
      Search.htmlToText = searchText;  // eslint-disable-line no-undef
    }
  });

  let timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      check();
      document.querySelectorAll("img.fig-zoomable").forEach(markWide);
    }, 200);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { whenTypeset(200); });
  } else {
    whenTypeset(200);
  }
})();
