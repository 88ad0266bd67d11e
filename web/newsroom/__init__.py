"""The newsroom's pages, one room each, all on the ``editor`` blueprint of :mod:`web.editor` (which holds the
blueprint, its error pages and template filters, and the table of routes).

- :mod:`~web.newsroom.common`: the account, its sites and campaigns, names and times in the page language;
- :mod:`~web.newsroom.compose`: compose and send, test sends, the audience and payload-budget figures;
- :mod:`~web.newsroom.prefill`: the compose form filled from one of the publisher's own articles;
- :mod:`~web.newsroom.campaigns`: the campaign list and live page, the readers panel, cancel, duplicate,
  approve;
- :mod:`~web.newsroom.accounts`: accounts (admin).
"""
