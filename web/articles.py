"""The demo articles the reader pages show (content, not interface text: the publisher's CMS replaces them).

Each article exists in Indonesian and English; other page languages show the Indonesian text
(:func:`article_in`), as a publisher's site shows its articles in the language they were written in.
"""

from __future__ import annotations

from typing import Any

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


def article_in(slug: str, lang: str) -> dict[str, Any] | None:
    """The article ``slug`` in ``lang`` (Indonesian when it has no such version), or None."""
    versions = ARTICLES.get(slug)
    if versions is None:
        return None
    return versions.get(lang) or versions["id"]
