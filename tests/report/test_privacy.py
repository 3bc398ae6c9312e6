"""The report's DP block reads both shapes fl_train publishes, and says which mode it is and what it covers."""

from __future__ import annotations

from workbench.report.privacy import dp_block


def test_sample_level_has_a_row_per_site_and_client_level_one_account_saying_what_it_covers() -> None:
    figures = {"epsilon": 2.0, "delta": 1e-4, "noise_multiplier": 1.1, "clip": 1.0, "sample_rate": 0.2, "steps": 100, "accountant": "RDP"}
    sample = dp_block({"north": figures, "south": figures})
    assert "sample level" in sample.title and [row[0] for row in sample.rows] == ["north", "south"]
    assert "Sample-level DP: DP-SGD" in sample.note
    client = {"level": "client", "epsilon": 2.0, "delta": 1e-4, "noise_multiplier": 8.5, "clip": 1.0, "sample_rate": 1.0}
    block = dp_block(client | {"rounds": 20, "sites": 3, "sites_per_round": 3, "noise_std": 8.5 / 3, "accountant": "RDP, no amplification"})
    assert "client level" in block.title and block.rows == [["client", 2.0, 1e-4, 8.5, 1.0, 20, 3, 8.5 / 3]]
    assert "covers each site's whole participation" in block.note and "The aggregator is trusted" in block.note
    assert "per-site training loss and held-out metrics" in block.note and "hundreds of sites" in block.note
