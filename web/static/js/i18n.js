/*
 * gettext for page scripts. The page carries its language's compiled catalog (fallbacks applied) in
 * <script type="application/json" id="notifier-i18n">; scripts call
 *
 *   var _ = NotifierI18n.gettext;
 *   _("Steps for %(browser)s", { browser: name });
 *   NotifierI18n.ngettext("Send to %(count)s subscriber", "Send to %(count)s subscribers", n, { count: NotifierI18n.number(n) });
 *   NotifierI18n.pgettext("campaign state", "done");
 *
 * `scripts/i18n update` extracts these calls into the same catalogs as the pages' messages (string
 * literals only: never pass a variable as the message). Missing messages show the English source.
 */
(function (global) {
  "use strict";

  function load(doc) {
    var el = doc && doc.getElementById ? doc.getElementById("notifier-i18n") : null;
    if (!el) { return { lang: "en", locales: ["en"], messages: {} }; }
    try { return JSON.parse(el.textContent); } catch (e) { return { lang: "en", locales: ["en"], messages: {} }; }
  }

  function create(catalog) {
    var messages = catalog.messages || {};
    var locales = catalog.locales || [catalog.lang || "en"];

    function supported(kind) {
      try {
        var ok = kind.supportedLocalesOf(locales);
        return ok.length ? ok : ["en"];
      } catch (e) { return ["en"]; }
    }
    var numberLocales = typeof Intl !== "undefined" ? supported(Intl.NumberFormat) : ["en"];
    var numberFormat = typeof Intl !== "undefined" ? new Intl.NumberFormat(numberLocales) : null;
    var pluralRules = {};

    function format(text, values) {
      if (!values) { return text; }
      return text.replace(/%\((\w+)\)[sd]/g, function (whole, name) {
        return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
      });
    }

    function category(lang, n) {
      if (typeof Intl === "undefined" || !Intl.PluralRules) { return n === 1 ? "one" : "other"; }
      if (!pluralRules[lang]) {
        var ok = [];
        try { ok = Intl.PluralRules.supportedLocalesOf([lang]); } catch (e) { ok = []; }
        pluralRules[lang] = new Intl.PluralRules(ok.length ? ok : ["en"]);
      }
      return pluralRules[lang].select(n);
    }

    function gettext(msgid, values) {
      var found = messages[msgid];
      return format(typeof found === "string" ? found : msgid, values);
    }

    function lookupPlural(key, singular, plural, n, values) {
      var forms = messages[key];
      var text;
      if (forms && typeof forms === "object") {
        var cat = category(forms._lang || catalog.lang, n);
        text = forms[cat] || forms.other;
      }
      if (!text) { text = n === 1 ? singular : plural; }
      return format(text, values);
    }

    return {
      lang: catalog.lang,
      gettext: gettext,
      ngettext: function (singular, plural, n, values) { return lookupPlural(singular, singular, plural, n, values); },
      pgettext: function (context, msgid, values) {
        var found = messages[context + "\u0004" + msgid];
        return format(typeof found === "string" ? found : msgid, values);
      },
      npgettext: function (context, singular, plural, n, values) {
        return lookupPlural(context + "\u0004" + singular, singular, plural, n, values);
      },
      number: function (n) { return numberFormat ? numberFormat.format(n) : String(n); },
      create: create
    };
  }

  global.NotifierI18n = create(load(global.document));
  // The embed bundle (web/embed.py) defines NOTIFIER_SCOPE: nothing lands on a publisher's window.
}(typeof NOTIFIER_SCOPE !== "undefined" ? NOTIFIER_SCOPE : typeof self !== "undefined" ? self : this));
