"""The demo's sample outputs in the README and docs/ are what the demo prints now."""

from __future__ import annotations

import pytest

from sandbox import samples


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_each_documented_sample_is_a_real_run(name):
    documented = [body for relative in samples.DOCUMENTS
                  for found, body in samples.blocks((samples.REPO / relative).read_text())
                  if found == name]
    assert documented, f"no sample block named {name}"
    fresh = samples.mask(samples.render(name))
    assert [samples.mask(body) for body in documented] == [fresh] * len(documented)


def test_masking_keeps_what_a_run_decides():
    text = ("replace  db-1 i-9f3e20b4c6bc42532  100% replaced by i-ce8416490255d65dd  \n"
            "refresh de013c6e toward template version 2 · real time 7.8s · report /x/y.json")
    assert samples.mask(text) == ("replace  db-1 i-…  100% replaced by i-…\n"
                                  "refresh <refresh> toward template version 2 · "
                                  "real time …s · report …")
