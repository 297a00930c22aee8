/* Referral snippet v1, served by the links gateway at /snippet/v1/referral.js.
   Frozen: a change ships as v2 (pages pin this file's SRI hash). No eval, no inline code. */
(function (w, d) {
  "use strict";
  var s = d.currentScript, o = (s && s.dataset) || {};
  var NAME = o.cookie || "referral", DAYS = parseInt(o.days, 10) > 0 ? parseInt(o.days, 10) : 90;
  var CLICK_IN = o.clickInput || "referral_click_id", CODE_IN = o.codeInput || "referral_code";
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  var CODE = /^[A-Za-z0-9_-]{4,64}$/;

  function write(value, maxAge) {
    d.cookie = NAME + "=" + value + "; Max-Age=" + maxAge + "; Path=/; SameSite=Lax" +
      (o.domain ? "; Domain=" + o.domain : "") + (location.protocol === "https:" ? "; Secure" : "");
  }
  function get() {
    var parts = d.cookie.split("; ");
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(NAME + "=") === 0) {
        var q = new URLSearchParams(parts[i].slice(NAME.length + 1));
        var click = q.get("c") || "", code = q.get("r") || "";
        if (UUID.test(click) || CODE.test(code)) {
          return { clickId: UUID.test(click) ? click : null, code: CODE.test(code) ? code : null };
        }
      }
    }
    return null;
  }
  function fill(form) {
    var r = get();
    [[CLICK_IN, r && r.clickId], [CODE_IN, r && r.code]].forEach(function (f) {
      var input = form.querySelector('input[name="' + f[0] + '"]');
      if (!input && f[1]) {
        input = d.createElement("input");
        input.type = "hidden";
        input.name = f[0];
        form.appendChild(input);
      }
      if (input) input.value = f[1] || "";
    });
  }
  function fillAll() {
    var forms = d.querySelectorAll("form[data-referral]");
    for (var i = 0; i < forms.length; i++) fill(forms[i]);
  }
  function clear() {
    write("", 0);
    fillAll();
  }

  // Landing: a click id or a typed code in the URL replaces what was kept (the last one wins).
  var url = new URLSearchParams(location.search), codes = (o.codeParams || "ref,code").split(",");
  var click = url.get(o.clickParam || "ref_click"), code = null;
  for (var i = 0; i < codes.length && !code; i++) code = url.get(codes[i]);
  click = click && UUID.test(click) ? click : "";
  code = code && CODE.test(code) ? code : "";
  if (click || code) {
    write("c=" + click + "&r=" + code, DAYS * 86400); // both checked: safe in a cookie value
  }
  if ("clear" in o) clear();

  w.Referral = { get: get, clear: clear, fill: fill };
  // Forms added later are filled when submitted (capture: before the page's own handlers).
  d.addEventListener("submit", function (e) {
    if (e.target && e.target.matches && e.target.matches("form[data-referral]")) fill(e.target);
  }, true);
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", fillAll);
  else fillAll();
  d.dispatchEvent(new CustomEvent("referral:ready", { detail: get() }));
})(window, document);
