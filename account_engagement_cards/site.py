"""Writes the site: into a fresh folder beside the target, then swapped in whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from account_engagement_cards.data import CardsError, Site
from account_engagement_cards.pages import CSS, card_filename, render_card, render_index

MARKER = ".customer-cards"  # marks a folder this program wrote (and may replace)


@dataclass(frozen=True)
class Written:
    index: Path
    cards: int


def write_site(site: Site, out: Path) -> Written:
    """Writes index.html, cards.css and accounts/<id>.html; `out` is replaced only when it is
    missing, empty or a site written before (it holds the marker file)."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise CardsError(
            f"{out} exists and is not a customer-cards folder: choose another --out (the cards "
            "replace their folder whole)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / MARKER).write_text(
            "written by `account-engagement cards`; replaced on every build\n"
        )
        (staging / "cards.css").write_text(CSS, encoding="utf-8")
        (staging / "index.html").write_text(render_index(site), encoding="utf-8")
        accounts = staging / "accounts"
        accounts.mkdir()
        for account in site.accounts:
            (accounts / card_filename(account.account_id)).write_text(
                render_card(account, site), encoding="utf-8"
            )
        staging.chmod(0o755)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Written(index=out / "index.html", cards=len(site.accounts))
