"""Reader-facing text in Indonesian (the default) and English, and how a request picks its language.

Every string a reader can see on the public pages, in the page scripts and in the
service worker lives here, once per language; ``tests/web/test_public_pages.py``
checks that both languages define exactly the same keys. Placeholders in braces
(``{site}``, ``{origin}``) are filled in by the template or the page script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Request

from notifier.browsers import BROWSERS

#: Languages the pages speak; the first is the default.
LANGS: tuple[str, ...] = ("id", "en")
DEFAULT_LANG = "id"
#: Cookie that remembers the reader's explicit choice (``?lang=`` or the switcher).
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

#: Browser families in the order the "other browser" picker lists them: the detector's own order.
BROWSER_ORDER: tuple[str, ...] = BROWSERS

STRINGS: dict[str, dict[str, str]] = {
    "id": {
        "lang.name": "Bahasa Indonesia",
        "lang.switch_label": "Bahasa",
        "nav.home": "Beranda",
        "nav.subscribe": "Notifikasi",
        "nav.preferences": "Preferensi",
        "nav.skip": "Lewati ke konten",
        "footer.powered": "Notifikasi dikirim langsung oleh {site}, tanpa pihak ketiga.",
        "footer.privacy": "Kami hanya menyimpan alamat notifikasi peramban Anda dan topik yang Anda pilih.",
        "article.read_more": "Baca juga",
        "article.byline": "Oleh {author}",
        "article.not_found_title": "Artikel tidak ditemukan",
        "article.not_found_body": "Artikel yang Anda cari tidak ada atau sudah dipindahkan.",
        "article.back_home": "Kembali ke beranda",
        "optin.heading": "Dapatkan berita terbaru dari {site}",
        "optin.lead": "Terima notifikasi saat ada berita penting, langsung di peramban Anda. "
        "Gratis, tanpa mendaftar, dan bisa dimatikan kapan saja.",
        "optin.topics_legend": "Topik yang ingin Anda ikuti",
        "optin.topics_hint": "Anda bisa mengubahnya kapan saja di halaman Preferensi.",
        "optin.button": "Aktifkan notifikasi",
        "optin.later": "Nanti saja",
        "optin.later_done": "Baik. Tombol ini tetap ada di sini jika Anda berubah pikiran.",
        "optin.prompt_hint": "Setelah menekan tombol, peramban akan meminta izin. Pilih \u201cIzinkan\u201d.",
        "optin.checking": "Memeriksa dukungan notifikasi di peramban Anda\u2026",
        "optin.noscript": "Notifikasi memerlukan JavaScript. Aktifkan JavaScript untuk berlangganan.",
        "state.working": "Mengaktifkan notifikasi\u2026",
        "state.waiting_prompt": "Silakan jawab permintaan izin dari peramban Anda.",
        "state.subscribed_title": "Notifikasi aktif",
        "state.subscribed_body": "Anda akan menerima berita terbaru dari {site}.",
        "state.subscribed_live": "Izin notifikasi sekarang diizinkan. Notifikasi langsung kami aktifkan "
        "untuk Anda tanpa perlu menekan apa pun.",
        "state.manage": "Atur topik atau berhenti berlangganan",
        "state.dismissed": "Permintaan izin ditutup tanpa jawaban. Tekan tombol lagi kapan pun Anda siap.",
        "state.error_title": "Notifikasi belum bisa diaktifkan",
        "state.error_body": "Terjadi gangguan saat menghubungi layanan notifikasi. Periksa koneksi internet "
        "Anda, lalu coba lagi.",
        "state.retry": "Coba lagi",
        "unsupported.title": "Peramban ini belum mendukung notifikasi",
        "unsupported.body": "Peramban Anda tidak mendukung notifikasi web. Coba buka {site} di Chrome, "
        "Firefox, Edge, Samsung Internet, atau Safari versi terbaru.",
        "unsupported.private": "Jika Anda memakai mode penyamaran atau jendela pribadi, buka halaman ini "
        "di jendela biasa.",
        "ios.title": "Tambahkan {site} ke Layar Utama",
        "ios.body": "Di iPhone dan iPad, notifikasi hanya bisa diaktifkan dari situs yang sudah "
        "ditambahkan ke Layar Utama (iOS 16.4 atau lebih baru).",
        "ios.step1": "Ketuk tombol Bagikan (kotak dengan panah ke atas) di bilah Safari.",
        "ios.step2": "Pilih \u201cTambahkan ke Layar Utama\u201d, lalu ketuk \u201cTambah\u201d.",
        "ios.step3": "Buka {site} dari ikon baru di Layar Utama, lalu tekan \u201cAktifkan notifikasi\u201d.",
        "denied.title": "Notifikasi diblokir untuk situs ini",
        "denied.body": "Anda (atau peramban Anda) pernah memblokir notifikasi dari {site}. Peramban tidak "
        "mengizinkan kami bertanya lagi, jadi izinnya perlu diubah di pengaturan peramban.",
        "denied.origin_label": "Alamat situs yang perlu Anda cari di daftar:",
        "denied.steps_for": "Langkah untuk {browser}",
        "denied.other_browser": "Memakai peramban lain?",
        "denied.watching": "Halaman ini memantau izin notifikasi. Begitu Anda memilih \u201cIzinkan\u201d, "
        "notifikasi langsung aktif tanpa perlu menekan apa pun.",
        "denied.check_again": "Periksa lagi",
        "denied.still_blocked": "Notifikasi masih diblokir. Ikuti langkah di atas, lalu tekan "
        "\u201cPeriksa lagi\u201d.",
        "browser.chrome-desktop": "Chrome (komputer)",
        "browser.chrome-android": "Chrome (Android)",
        "browser.firefox": "Firefox",
        "browser.safari-macos": "Safari (Mac)",
        "browser.safari-ios": "Safari (iPhone/iPad)",
        "browser.edge": "Microsoft Edge",
        "browser.samsung": "Samsung Internet",
        "browser.other": "Peramban lain",
        "prefs.title": "Preferensi notifikasi",
        "prefs.lead": "Pilih topik berita yang ingin Anda terima dari {site}, atau berhenti berlangganan.",
        "prefs.loading": "Memuat preferensi Anda\u2026",
        "prefs.topics_legend": "Topik yang Anda ikuti",
        "prefs.save": "Simpan topik",
        "prefs.saved": "Topik tersimpan.",
        "prefs.unsubscribe": "Berhenti berlangganan",
        "prefs.unsubscribed": "Anda sudah berhenti berlangganan. Anda tidak akan menerima notifikasi lagi "
        "dari {site}.",
        "prefs.not_subscribed": "Peramban ini belum berlangganan notifikasi dari {site}.",
        "prefs.subscribe_link": "Aktifkan notifikasi",
        "prefs.error": "Preferensi tidak bisa disimpan. Periksa koneksi Anda, lalu coba lagi.",
        "subscribe.title": "Notifikasi berita",
        "subscribe.lead": "Ikuti berita terbaru dari {site} tanpa harus membuka situs berulang kali.",
        "subscribe.point1": "Hanya berita penting dan topik yang Anda pilih, tidak lebih dari beberapa "
        "kali sehari.",
        "subscribe.point2": "Tidak perlu email atau akun; kami tidak tahu siapa Anda.",
        "subscribe.point3": "Berhenti kapan saja dari halaman Preferensi atau pengaturan peramban.",
        "sw.read": "Baca",
        "sw.generic_title": "{site}",
        "sw.generic_body": "Ada berita terbaru untuk Anda. Ketuk untuk membaca.",
    },
    "en": {
        "lang.name": "English",
        "lang.switch_label": "Language",
        "nav.home": "Home",
        "nav.subscribe": "Notifications",
        "nav.preferences": "Preferences",
        "nav.skip": "Skip to content",
        "footer.powered": "Notifications are sent directly by {site}, with no third party.",
        "footer.privacy": "We only keep your browser's notification address and the topics you choose.",
        "article.read_more": "Read also",
        "article.byline": "By {author}",
        "article.not_found_title": "Article not found",
        "article.not_found_body": "The article you are looking for does not exist or has moved.",
        "article.back_home": "Back to the home page",
        "optin.heading": "Get the latest news from {site}",
        "optin.lead": "Get a notification when important news breaks, right in your browser. "
        "Free, no sign-up, and you can turn it off at any time.",
        "optin.topics_legend": "Topics you want to follow",
        "optin.topics_hint": "You can change them at any time on the Preferences page.",
        "optin.button": "Turn on notifications",
        "optin.later": "Not now",
        "optin.later_done": "All right. This button stays here in case you change your mind.",
        "optin.prompt_hint": "After you press the button, your browser asks for permission. "
        "Choose \u201cAllow\u201d.",
        "optin.checking": "Checking notification support in your browser\u2026",
        "optin.noscript": "Notifications need JavaScript. Turn on JavaScript to subscribe.",
        "state.working": "Turning on notifications\u2026",
        "state.waiting_prompt": "Please answer your browser's permission request.",
        "state.subscribed_title": "Notifications are on",
        "state.subscribed_body": "You will receive the latest news from {site}.",
        "state.subscribed_live": "Notifications are now allowed. We turned them on for you; there is "
        "nothing else to press.",
        "state.manage": "Change topics or unsubscribe",
        "state.dismissed": "The permission request was closed without an answer. Press the button again "
        "whenever you are ready.",
        "state.error_title": "Notifications could not be turned on",
        "state.error_body": "Something went wrong while contacting the notification service. Check your "
        "internet connection and try again.",
        "state.retry": "Try again",
        "unsupported.title": "This browser does not support notifications yet",
        "unsupported.body": "Your browser does not support web notifications. Try opening {site} in a "
        "recent Chrome, Firefox, Edge, Samsung Internet or Safari.",
        "unsupported.private": "If you are in incognito or a private window, open this page in a normal "
        "window.",
        "ios.title": "Add {site} to your Home Screen",
        "ios.body": "On iPhone and iPad, notifications can only be turned on for sites added to the Home "
        "Screen (iOS 16.4 or later).",
        "ios.step1": "Tap the Share button (the square with an arrow pointing up) in Safari's toolbar.",
        "ios.step2": "Choose \u201cAdd to Home Screen\u201d, then tap \u201cAdd\u201d.",
        "ios.step3": "Open {site} from the new Home Screen icon, then press "
        "\u201cTurn on notifications\u201d.",
        "denied.title": "Notifications are blocked for this site",
        "denied.body": "You (or your browser) blocked notifications from {site} before. The browser does "
        "not let us ask again, so the permission has to be changed in your browser's settings.",
        "denied.origin_label": "The site address to look for in the list:",
        "denied.steps_for": "Steps for {browser}",
        "denied.other_browser": "Using another browser?",
        "denied.watching": "This page watches the notification permission. As soon as you choose "
        "\u201cAllow\u201d, notifications turn on without pressing anything.",
        "denied.check_again": "Check again",
        "denied.still_blocked": "Notifications are still blocked. Follow the steps above, then press "
        "\u201cCheck again\u201d.",
        "browser.chrome-desktop": "Chrome (computer)",
        "browser.chrome-android": "Chrome (Android)",
        "browser.firefox": "Firefox",
        "browser.safari-macos": "Safari (Mac)",
        "browser.safari-ios": "Safari (iPhone/iPad)",
        "browser.edge": "Microsoft Edge",
        "browser.samsung": "Samsung Internet",
        "browser.other": "Another browser",
        "prefs.title": "Notification preferences",
        "prefs.lead": "Choose the news topics you want from {site}, or unsubscribe.",
        "prefs.loading": "Loading your preferences\u2026",
        "prefs.topics_legend": "Topics you follow",
        "prefs.save": "Save topics",
        "prefs.saved": "Topics saved.",
        "prefs.unsubscribe": "Unsubscribe",
        "prefs.unsubscribed": "You have unsubscribed. You will not receive notifications from {site} "
        "anymore.",
        "prefs.not_subscribed": "This browser is not subscribed to notifications from {site}.",
        "prefs.subscribe_link": "Turn on notifications",
        "prefs.error": "Your preferences could not be saved. Check your connection and try again.",
        "subscribe.title": "News notifications",
        "subscribe.lead": "Follow the latest news from {site} without having to keep checking the site.",
        "subscribe.point1": "Only important news and the topics you choose, no more than a few times a day.",
        "subscribe.point2": "No email or account needed; we do not know who you are.",
        "subscribe.point3": "Stop at any time from the Preferences page or your browser's settings.",
        "sw.read": "Read",
        "sw.generic_title": "{site}",
        "sw.generic_body": "There is new news for you. Tap to read.",
    },
}

#: Steps to allow notifications again, per browser family. ``{origin}`` is the site's origin
#: (the page shows ``location.origin``), ``{site}`` the site's name.
DENIED_STEPS: dict[str, dict[str, tuple[str, ...]]] = {
    "id": {
        "chrome-desktop": (
            "Klik ikon di sebelah kiri alamat situs pada bilah alamat (ikon gembok atau ikon setelan).",
            "Pada \u201cNotifikasi\u201d, pilih \u201cIzinkan\u201d. Jika tidak terlihat, klik "
            "\u201cSetelan situs\u201d dan ubah \u201cNotifikasi\u201d menjadi \u201cIzinkan\u201d.",
            "Cara lain: menu \u22ee \u2192 Setelan \u2192 Privasi dan keamanan \u2192 Setelan situs "
            "\u2192 Notifikasi, cari {origin} di bagian \u201cTidak diizinkan\u201d, lalu pilih "
            "\u201cIzinkan\u201d.",
            "Kembali ke halaman ini. Notifikasi langsung aktif.",
        ),
        "chrome-android": (
            "Ketuk ikon di sebelah kiri alamat situs pada bilah alamat, lalu ketuk \u201cIzin\u201d.",
            "Ketuk \u201cNotifikasi\u201d dan pilih \u201cIzinkan\u201d.",
            "Cara lain: menu \u22ee \u2192 Setelan \u2192 Setelan situs \u2192 Notifikasi, cari {origin} "
            "di bagian \u201cDiblokir\u201d, lalu pilih \u201cIzinkan\u201d.",
            "Pastikan notifikasi untuk aplikasi Chrome juga aktif di Setelan Android \u2192 Aplikasi "
            "\u2192 Chrome \u2192 Notifikasi.",
        ),
        "firefox": (
            "Buka menu \u2630 \u2192 Pengaturan \u2192 Privasi & Keamanan.",
            "Gulir ke \u201cIzin\u201d, lalu klik \u201cPengaturan\u2026\u201d di samping "
            "\u201cNotifikasi\u201d.",
            "Cari {origin} di daftar, ubah statusnya menjadi \u201cIzinkan\u201d, lalu klik "
            "\u201cSimpan Perubahan\u201d.",
            "Di Firefox Android: menu \u22ee \u2192 Pengaturan \u2192 Izin situs \u2192 Notifikasi.",
        ),
        "safari-macos": (
            "Di bilah menu, pilih Safari \u2192 Pengaturan (atau Preferensi), lalu buka tab "
            "\u201cSitus Web\u201d.",
            "Pilih \u201cNotifikasi\u201d di daftar sebelah kiri.",
            "Cari {origin} dan ubah pilihannya menjadi \u201cIzinkan\u201d.",
            "Pastikan Safari boleh menampilkan notifikasi di Pengaturan Sistem \u2192 Notifikasi.",
        ),
        "safari-ios": (
            "Buka aplikasi Pengaturan di iPhone atau iPad Anda.",
            "Ketuk \u201cNotifikasi\u201d, lalu cari {site} (aplikasi dari Layar Utama) di daftar.",
            "Aktifkan \u201cIzinkan Notifikasi\u201d.",
            "Buka kembali {site} dari Layar Utama.",
        ),
        "edge": (
            "Klik ikon gembok di sebelah kiri alamat situs pada bilah alamat.",
            "Pilih \u201cIzin untuk situs ini\u201d, lalu ubah \u201cPemberitahuan\u201d menjadi "
            "\u201cIzinkan\u201d.",
            "Cara lain: menu \u22ef \u2192 Pengaturan \u2192 Cookie dan izin situs \u2192 "
            "Pemberitahuan, cari {origin} di bagian \u201cBlokir\u201d, lalu pilih \u201cIzinkan\u201d.",
            "Kembali ke halaman ini. Notifikasi langsung aktif.",
        ),
        "samsung": (
            "Ketuk menu \u2261 di kanan bawah, lalu ketuk \u201cPengaturan\u201d.",
            "Ketuk \u201cSitus dan unduhan\u201d \u2192 \u201cNotifikasi\u201d.",
            "Cari {origin} di daftar situs yang diblokir, lalu ubah menjadi \u201cIzinkan\u201d.",
            "Kembali ke halaman ini. Notifikasi langsung aktif.",
        ),
        "other": (
            "Buka Pengaturan (Setelan) peramban Anda.",
            "Cari bagian \u201cNotifikasi\u201d, biasanya di Setelan situs atau Privasi.",
            "Cari {origin} di daftar situs, lalu pilih \u201cIzinkan\u201d.",
            "Kembali ke halaman ini. Notifikasi langsung aktif.",
        ),
    },
    "en": {
        "chrome-desktop": (
            "Click the icon to the left of the site address in the address bar (the lock or settings icon).",
            "Next to \u201cNotifications\u201d, choose \u201cAllow\u201d. If it is not listed, click "
            "\u201cSite settings\u201d and set \u201cNotifications\u201d to \u201cAllow\u201d.",
            "Or: menu \u22ee \u2192 Settings \u2192 Privacy and security \u2192 Site settings \u2192 "
            "Notifications, find {origin} under \u201cNot allowed\u201d and choose \u201cAllow\u201d.",
            "Come back to this page. Notifications turn on right away.",
        ),
        "chrome-android": (
            "Tap the icon to the left of the site address in the address bar, then tap "
            "\u201cPermissions\u201d.",
            "Tap \u201cNotifications\u201d and choose \u201cAllow\u201d.",
            "Or: menu \u22ee \u2192 Settings \u2192 Site settings \u2192 Notifications, find {origin} "
            "under \u201cBlocked\u201d and choose \u201cAllow\u201d.",
            "Make sure notifications for the Chrome app are on too, in Android Settings \u2192 Apps "
            "\u2192 Chrome \u2192 Notifications.",
        ),
        "firefox": (
            "Open the menu \u2630 \u2192 Settings \u2192 Privacy & Security.",
            "Scroll to \u201cPermissions\u201d and click \u201cSettings\u2026\u201d next to "
            "\u201cNotifications\u201d.",
            "Find {origin} in the list, set its status to \u201cAllow\u201d and click "
            "\u201cSave Changes\u201d.",
            "In Firefox for Android: menu \u22ee \u2192 Settings \u2192 Site permissions \u2192 "
            "Notifications.",
        ),
        "safari-macos": (
            "In the menu bar, choose Safari \u2192 Settings (or Preferences), then open the "
            "\u201cWebsites\u201d tab.",
            "Select \u201cNotifications\u201d in the list on the left.",
            "Find {origin} and change it to \u201cAllow\u201d.",
            "Make sure Safari may show notifications in System Settings \u2192 Notifications.",
        ),
        "safari-ios": (
            "Open the Settings app on your iPhone or iPad.",
            "Tap \u201cNotifications\u201d, then find {site} (the Home Screen app) in the list.",
            "Turn on \u201cAllow Notifications\u201d.",
            "Open {site} again from your Home Screen.",
        ),
        "edge": (
            "Click the lock icon to the left of the site address in the address bar.",
            "Choose \u201cPermissions for this site\u201d and set \u201cNotifications\u201d to "
            "\u201cAllow\u201d.",
            "Or: menu \u22ef \u2192 Settings \u2192 Cookies and site permissions \u2192 Notifications, "
            "find {origin} under \u201cBlock\u201d and choose \u201cAllow\u201d.",
            "Come back to this page. Notifications turn on right away.",
        ),
        "samsung": (
            "Tap the menu \u2261 at the bottom right, then tap \u201cSettings\u201d.",
            "Tap \u201cSites and downloads\u201d \u2192 \u201cNotifications\u201d.",
            "Find {origin} among the blocked sites and change it to \u201cAllow\u201d.",
            "Come back to this page. Notifications turn on right away.",
        ),
        "other": (
            "Open your browser's Settings.",
            "Find the \u201cNotifications\u201d section, usually under Site settings or Privacy.",
            "Find {origin} in the list of sites and choose \u201cAllow\u201d.",
            "Come back to this page. Notifications turn on right away.",
        ),
    },
}

#: The demo articles the public pages show (the publisher's CMS replaces them in production).
ARTICLES: dict[str, dict[str, dict[str, Any]]] = {
    "bus-listrik-rute-pesisir": {
        "id": {
            "title": "Bus Listrik Mulai Layani Rute Pesisir Utara Pekan Depan",
            "kicker": "Nasional",
            "author": "Rina Prameswari",
            "date": "Senin, 12 Mei 2025 09:15 WIB",
            "lead": "Pemerintah kota menambah 40 bus listrik untuk rute pesisir utara yang selama ini "
            "hanya dilayani angkutan kota tua.",
            "paragraphs": (
                "Dinas Perhubungan kota memastikan 40 bus listrik baru mulai melayani rute pesisir "
                "utara pada Senin pekan depan. Rute sepanjang 18 kilometer itu menghubungkan terminal "
                "pelabuhan dengan kawasan permukiman nelayan dan dua pasar tradisional.",
                "\u201cSelama ini warga pesisir harus berganti angkutan dua sampai tiga kali untuk ke "
                "pusat kota. Dengan rute baru ini cukup sekali jalan,\u201d kata Kepala Dinas "
                "Perhubungan, Hendra Wibisono, saat meninjau depo bus, Senin.",
                "Selama satu bulan pertama, penumpang tidak dipungut biaya. Setelah itu tarif "
                "mengikuti tarif bus kota, yakni Rp3.500 sekali jalan, dengan potongan bagi pelajar "
                "dan warga lanjut usia.",
                "Pengemudi angkutan kota yang trayeknya bersinggungan dengan rute baru ditawari "
                "pelatihan dan kesempatan bergabung sebagai pengemudi bus. Menurut Hendra, sudah 63 "
                "pengemudi mendaftar.",
                "Sejumlah warga menyambut baik rencana itu, meski berharap jadwal bus juga "
                "menyesuaikan jam pulang nelayan pada dini hari.",
            ),
        },
        "en": {
            "title": "Electric Buses Start Serving the North Coast Route Next Week",
            "kicker": "National",
            "author": "Rina Prameswari",
            "date": "Monday, 12 May 2025 09:15 WIB",
            "lead": "The city adds 40 electric buses on the north coast route, until now served only "
            "by ageing minibuses.",
            "paragraphs": (
                "The city transport agency confirmed that 40 new electric buses will start serving "
                "the north coast route next Monday. The 18-kilometre route links the harbour terminal "
                "with the fishing neighbourhoods and two traditional markets.",
                "\u201cCoastal residents have had to change vehicles two or three times to reach the "
                "city centre. With this route it is a single ride,\u201d the head of the transport "
                "agency, Hendra Wibisono, said while visiting the bus depot on Monday.",
                "Rides are free for the first month. After that the fare follows the city bus fare "
                "of Rp3,500 per trip, with discounts for students and older residents.",
                "Minibus drivers whose routes overlap with the new one are being offered training "
                "and the chance to join as bus drivers. According to Hendra, 63 drivers have "
                "already signed up.",
                "Several residents welcomed the plan, while hoping the timetable will also fit the "
                "fishermen who come home before dawn.",
            ),
        },
    },
    "harga-cabai-turun-jelang-panen": {
        "id": {
            "title": "Harga Cabai Mulai Turun Menjelang Panen Raya",
            "kicker": "Ekonomi",
            "author": "Dimas Aditya",
            "date": "Minggu, 11 Mei 2025 16:40 WIB",
            "lead": "Pedagang di pasar induk mencatat harga cabai rawit turun hampir sepertiga dalam "
            "dua pekan terakhir.",
            "paragraphs": (
                "Harga cabai rawit di pasar induk turun dari Rp72.000 menjadi Rp49.000 per kilogram "
                "dalam dua pekan terakhir. Pedagang menyebut pasokan dari sentra produksi di dataran "
                "tinggi mulai lancar setelah cuaca membaik.",
                "\u201cKiriman sekarang bisa tiga truk sehari, bulan lalu satu truk saja susah,\u201d "
                "ujar Siti Aminah, pedagang yang sudah 15 tahun berjualan di pasar itu.",
                "Dinas Pertanian memperkirakan panen raya berlangsung hingga akhir Juni sehingga "
                "harga berpeluang turun lagi. Petani diminta mengatur waktu panen agar harga di "
                "tingkat petani tidak anjlok.",
            ),
        },
        "en": {
            "title": "Chilli Prices Start to Fall Ahead of the Main Harvest",
            "kicker": "Business",
            "author": "Dimas Aditya",
            "date": "Sunday, 11 May 2025 16:40 WIB",
            "lead": "Traders at the central market saw bird's eye chilli prices fall by almost a third in "
            "the past two weeks.",
            "paragraphs": (
                "The price of bird's eye chillies at the central market fell from Rp72,000 to Rp49,000 "
                "a kilogram in the past two weeks. Traders say supplies from the highland growing "
                "areas have picked up since the weather improved.",
                "\u201cWe now get three trucks a day; last month even one truck was hard,\u201d said "
                "Siti Aminah, who has traded at the market for 15 years.",
                "The agriculture office expects the main harvest to last until the end of June, so "
                "prices may fall further. Farmers are being asked to stagger their harvests so that "
                "farm-gate prices do not collapse.",
            ),
        },
    },
}

#: The article ``/`` shows.
HOME_ARTICLE = "bus-listrik-rute-pesisir"

#: Keys the page scripts need (passed as JSON in the page, never hard-coded in JS).
JS_KEYS: tuple[str, ...] = (
    "state.working",
    "state.waiting_prompt",
    "state.subscribed_live",
    "state.dismissed",
    "denied.still_blocked",
    "denied.steps_for",
    "optin.later_done",
    "prefs.saved",
    "prefs.error",
    "prefs.unsubscribed",
    "prefs.not_subscribed",
)

#: Keys the service worker needs (embedded in ``/sw.js`` for both languages).
SW_KEYS: tuple[str, ...] = ("sw.read", "sw.generic_title", "sw.generic_body")


def normalize_lang(value: str | None) -> str | None:
    """``id`` or ``en`` for a language tag such as ``en-GB`` or ``in``; None when unsupported."""
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-")[0]
    if primary == "in":  # the legacy ISO 639 code some Android browsers still send
        primary = "id"
    return primary if primary in LANGS else None


def pick_lang(request: Request) -> tuple[str, bool]:
    """The page language and whether it came from ``?lang=`` (so the caller remembers it in a cookie).

    Order: ``?lang=``, the cookie, the ``Accept-Language`` header, Indonesian.
    """
    explicit = normalize_lang(request.args.get("lang"))
    if explicit:
        return explicit, True
    remembered = normalize_lang(request.cookies.get(LANG_COOKIE))
    if remembered:
        return remembered, False
    best = request.accept_languages.best_match(["id", "in", "en"])
    return normalize_lang(best) or DEFAULT_LANG, False


def translate(lang: str, key: str, **values: str) -> str:
    """The string ``key`` in ``lang`` with its ``{name}`` fields filled from ``values``."""
    text = STRINGS[lang][key]
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def strings_for(lang: str, keys: Sequence[str], **values: str) -> dict[str, str]:
    """A subset of the strings of ``lang`` with their ``{name}`` fields filled (for the page scripts)."""
    return {key: translate(lang, key, **values) for key in keys}


def browser_names(lang: str) -> Mapping[str, str]:
    """Browser family → its display name in ``lang``."""
    return {family: STRINGS[lang]["browser." + family] for family in BROWSER_ORDER}
