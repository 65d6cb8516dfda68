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

  // docutils marks a bibliography as role="list" whose entries carry role="doc-biblioentry",
  // which is not a list item, so a screen reader announces an empty list (axe-core:
  // aria-required-children, critical). Make the entries list items.
  function citationLists() {
    document.querySelectorAll('.citation-list[role="list"] > .citation').forEach(function (c) {
      c.setAttribute("role", "listitem");
    });
  }
  document.addEventListener("DOMContentLoaded", citationLists);

  let timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 200);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { whenTypeset(200); });
  } else {
    whenTypeset(200);
  }
})();
