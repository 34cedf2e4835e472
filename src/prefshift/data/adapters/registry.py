"""Adapters by name: what a study config's ``adapter:`` field refers to."""

from __future__ import annotations

from prefshift.data.adapters.base import Adapter
from prefshift.data.adapters.cnn_dailymail import CNN_DAILYMAIL
from prefshift.data.adapters.hh_rlhf import HH_RLHF
from prefshift.data.adapters.shp import SHP
from prefshift.data.adapters.tldr import TLDR_PREFERENCE, TLDR_SFT, TLDR_SFT_CARPER
from prefshift.data.adapters.ultrafeedback import ULTRAFEEDBACK

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (TLDR_PREFERENCE, TLDR_SFT, TLDR_SFT_CARPER, CNN_DAILYMAIL, HH_RLHF, ULTRAFEEDBACK, SHP)
}


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; the error lists the valid names."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown dataset adapter {name!r}; valid: {sorted(ADAPTERS)}") from None
