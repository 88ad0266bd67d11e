"""A publisher's own site for the embed tests: static files served by a plain HTTP server, not by notifier.

The article page is a static copy of a news article (text written for these tests), with the tag from
docs/embed.md pasted where the seed article's footer lists its four manual steps, and the one-line
worker file at the origin's root, as a publisher would upload them. ``worker="proxy"`` serves
``/notifier-sw.js`` by proxying it to notifier instead (the nginx ``location`` of docs/embed.md).
``hostile=True`` adds a stylesheet that restyles ``*``, ``div`` and ``button`` with ``!important``.
"""

from __future__ import annotations

import html
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: The article (Indonesian, like the seed's publisher), its headline and its body paragraphs.
HEADLINE = "Harga Beras Medium Turun Rp500 per Kilogram di Pasar Induk Cipinang"
PARAGRAPHS = (
    "Jakarta: Harga beras medium di Pasar Induk Beras Cipinang turun rata-rata Rp500 per kilogram dalam "
    "sepekan terakhir. Pedagang menyebut pasokan dari sentra panen di Jawa Tengah dan Jawa Timur mulai "
    "masuk dalam jumlah besar sejak awal bulan.",
    "\u201cTruk dari Demak dan Ngawi datang setiap hari, jadi stok di gudang kami penuh,\u201d kata Wahyu, "
    "pedagang grosir yang sudah berjualan di Cipinang selama dua puluh tahun, Selasa pagi.",
    "Badan Pangan Nasional mencatat stok beras di pasar induk mencapai 42 ribu ton, di atas rata-rata "
    "bulanan. Lembaga itu memperkirakan harga di tingkat pengecer akan menyusul turun dalam dua pekan.",
    "Meski begitu, harga beras premium belum bergerak. Pedagang menilai permintaan dari hotel dan "
    "restoran masih tinggi menjelang musim libur sekolah.",
)
#: Styles of an ordinary news page (narrow column, big headline).
PAGE_CSS = """
body { margin: 0; font: 17px/1.6 Georgia, serif; color: #222; background: #fff; }
header.masthead { background: #b3001b; color: #fff; padding: 12px 16px; font: bold 20px sans-serif; }
main { max-width: 720px; margin: 0 auto; padding: 16px; }
h1 { font: bold 26px/1.25 sans-serif; margin: 8px 0 6px; }
.byline { color: #666; font: 14px sans-serif; margin-bottom: 14px; }
figure { margin: 0 0 14px; } figure div.photo { background: #c9d4dc; height: 180px; border-radius: 4px; }
figcaption { font: 13px sans-serif; color: #666; margin-top: 4px; }
.also { border-left: 3px solid #b3001b; padding-left: 10px; font: 15px sans-serif; }
.notify-slot { margin: 24px 0; }
footer { border-top: 1px solid #ddd; margin-top: 28px; padding: 16px; font: 13px sans-serif; color: #777; }
"""
#: A publisher stylesheet that restyles everything it can reach, with !important.
HOSTILE_CSS = """
html { font-size: 10px !important; }
body { font-size: 30px !important; line-height: 3 !important; letter-spacing: 2px !important; }
* { font-family: "Comic Sans MS", cursive !important; color: #ff00ff !important;
    text-transform: uppercase !important; box-sizing: content-box !important; }
div { padding: 30px !important; margin: 20px !important; border: 6px dashed red !important;
      background: yellow !important; display: inline !important; font-size: 40px !important; }
button { all: unset !important; background: black !important; font-size: 44px !important;
         padding: 40px !important; border-radius: 0 !important; display: inline !important; }
input, select, label, h2, h3, p, section, code { font-size: 9px !important; margin: 40px !important; }
"""


def article_html(notifier_url: str, site: str, *, hostile: bool, lang: str | None, widgets: int = 1) -> str:
    """The article page with the embed tag pasted into it (docs/embed.md); ``widgets=2`` adds a second
    widget element under the byline (one tag, two places on the page)."""
    lang_attr = f' data-lang="{html.escape(lang)}"' if lang else ""
    top = '    <aside class="notify-top"><div data-notifier-widget></div></aside>\n' if widgets > 1 else ""
    paragraphs = "\n".join(f"    <p>{html.escape(p)}</p>" for p in PARAGRAPHS)
    hostile_link = '  <link rel="stylesheet" href="/hostile.css">\n' if hostile else ""
    return f"""<!doctype html>
<html lang="id">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(HEADLINE)} | Warta Kota Lama</title>
  <link rel="stylesheet" href="/site.css">
{hostile_link}</head>
<body>
  <header class="masthead">Warta Kota Lama</header>
  <main>
    <h1>{html.escape(HEADLINE)}</h1>
    <div class="byline">Dewi Lestari - 14 Mei 2025 09:10 WIB</div>
{top}    <figure><div class="photo"></div><figcaption>Pedagang menata karung beras di Cipinang.</figcaption></figure>
{paragraphs}
    <p class="also">Baca juga: Pemerintah Siapkan Operasi Pasar Jelang Lebaran</p>
    <div class="notify-slot">
      <div data-notifier-widget></div>
      <script src="{html.escape(notifier_url)}/embed.js" data-site="{html.escape(site)}"{lang_attr} async></script>
    </div>
  </main>
  <footer>Powered by Warta Kota Lama</footer>
</body>
</html>
"""


@dataclass
class Publisher:
    """The publisher's static site on its own port."""

    root: Path
    server: ThreadingHTTPServer
    thread: threading.Thread
    proxied: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: a potentially trustworthy origin, so push works on it."""
        return f"http://127.0.0.1:{self.port}"

    def publish(
        self,
        notifier_url: str,
        site: str,
        *,
        worker: str = "file",
        hostile: bool = False,
        lang: str | None = None,
        page: str = "index.html",
        widgets: int = 1,
    ) -> str:
        """Write the article page (and the worker file, or its proxy) as the publisher would; its URL."""
        (self.root / page).write_text(
            article_html(notifier_url, site, hostile=hostile, lang=lang, widgets=widgets), "utf-8"
        )
        (self.root / "site.css").write_text(PAGE_CSS, "utf-8")
        (self.root / "hostile.css").write_text(HOSTILE_CSS, "utf-8")
        worker_file = self.root / "notifier-sw.js"
        if worker == "file":
            # The exact file docs/embed.md tells a publisher to upload.
            worker_file.write_text(f'importScripts("{notifier_url}/sw/{site}.js");\n', "utf-8")
            self.proxied.pop("/notifier-sw.js", None)
        else:
            worker_file.unlink(missing_ok=True)
            self.proxied["/notifier-sw.js"] = f"{notifier_url}/sw/{site}.js"
        return f"{self.origin}/{page}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def start_publisher(root: Path) -> Publisher:
    """Serve ``root`` on a free loopback port with a plain HTTP server."""
    root.mkdir(parents=True, exist_ok=True)
    proxied: dict[str, str] = {}

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            target = proxied.get(self.path.split("?", 1)[0])
            if target is None:
                super().do_GET()
                return
            # What `location = /notifier-sw.js { proxy_pass https://push.example.com/sw/<site>.js; }` does.
            with urllib.request.urlopen(target, timeout=5) as upstream:  # noqa: S310 - loopback notifier
                body = upstream.read()
                content_type = upstream.headers.get("Content-Type", "text/javascript")
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def end_headers(self) -> None:
            if self.path.endswith(".js"):
                self.send_header("Cache-Control", "no-cache")
            super().end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="publisher", daemon=True)
    thread.start()
    return Publisher(root, server, thread, proxied)
