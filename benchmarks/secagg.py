"""Cost of secure aggregation by masking next to plain and CKKS aggregation, measured in the same run.

    python benchmarks/secagg.py [--sizes 1e3,1e4,1e5,1e6] [--clients 3,10] [--flagship-rounds 150] [--repeats 3] [--smoke]

Per size and client count, the protocol of `workbench.crypto.secagg` alone (no Flower): each client's masking time
(AdvertiseKeys, ShareKeys and its masked input), the server's time to relay and unmask (all sites in, and with one
site gone after ShareKeys, whose pairwise masks it must rebuild), each client's Unmasking answer, and the bytes a
client sends in one round, next to a plain update of float64 (what `aggregation: none` sends) and of float32, and the
same sum in numpy. Then CKKS's own table (custody clients, `benchmarks/he.py`) at the same sizes, and the flagship's
federated part run whole under none, secagg and both CKKS custodies, alternating.
"""

from __future__ import annotations

import numpy as np
from he import aggregation_arguments, compare_runs, federated_part, primitives, timed
from rich.console import Console
from rich.table import Table
from smoke import small_cohort

from workbench import variants
from workbench.crypto import secagg
from workbench.fl.aggregation.secagg import SecAgg

PARAMS = secagg.SecAggParams()


def one_round(updates: list[np.ndarray], gone: str | None) -> dict[str, float]:
    """One aggregation over `updates` (site i's is updates[i]); `gone` drops out after ShareKeys. Seconds and bytes."""
    sites = [f"site-{i:02d}" for i in range(len(updates))]
    adverts, states, mask_seconds, sent = [], {}, 0.0, 0
    for site in sites:
        (state, advert), seconds = timed(secagg.advertise_keys, site)
        states[site], mask_seconds = state, mask_seconds + seconds
        adverts.append(advert)
        sent += len(site) + len(advert.cipher_public) + len(advert.mask_public)
    shares = []
    for site in sites:
        (states[site], out), seconds = timed(secagg.share_keys, states[site], PARAMS, adverts)
        mask_seconds += seconds
        shares += out
        sent += sum(len(s.ciphertext) + len(s.recipient) for s in out)
    (u2, inbox), relay_seconds = timed(secagg.relay, shares)
    inputs = []
    for site, update in zip(sites, updates):
        if site == gone:
            continue
        (states[site], masked), seconds = timed(secagg.masked_input, states[site], inbox[site], u2, update)
        mask_seconds += seconds
        inputs.append(masked)
        sent += masked.vector.nbytes
    request = secagg.unmask_request(u2, inputs)
    responses, unmask_seconds = [], 0.0
    for site in request.survivors:
        (states[site], response), seconds = timed(secagg.unmask, states[site], request)
        unmask_seconds += seconds
        responses.append(response)
        sent += sum(len(share) for share in [*response.seed_shares.values(), *response.key_shares.values()])
    total, server_seconds = timed(secagg.unmasked_sum, PARAMS, adverts, u2, inputs, responses)
    kept = [update for site, update in zip(sites, updates) if site != gone]
    error = float(np.abs(secagg.dequantize(PARAMS, total) - np.sum(kept, axis=0)).max())
    n = len(sites)
    return {
        "mask": mask_seconds / n,
        "server": relay_seconds + server_seconds,
        "unmask": unmask_seconds / len(request.survivors),
        "bytes": sent / n,
        "error": error,
    }


def protocol(sizes: list[int], client_counts: list[int], console: Console) -> None:
    table = Table(
        title=f"Secure aggregation by masking ({PARAMS.quantization_bits} bits over ±{PARAMS.clip_range:g}, modulo 2^{PARAMS.modulus_bits}) vs plaintext"
    )
    columns = ("params", "clients", "mask s/client", "server s", "server s, 1 dropout", "unmask s/client", "bytes/client", "× float64", "× float32")
    for column in (*columns, "max error", "bound", "plain sum s"):
        table.add_column(column, justify="right")
    rng = np.random.default_rng(0)
    for size in sizes:
        for clients in client_counts:
            updates = [rng.uniform(-1, 1, size) / clients for _ in range(clients)]
            full = one_round(updates, None)
            dropped = one_round(updates, "site-01")
            _, plain_seconds = timed(lambda stacked=updates: np.sum(np.stack(stacked), axis=0))
            table.add_row(
                f"{size:.0e}",
                str(clients),
                f"{full['mask']:.3f}",
                f"{full['server']:.3f}",
                f"{dropped['server']:.3f}",
                f"{full['unmask']:.4f}",
                f"{full['bytes']:,.0f}",
                f"{full['bytes'] / (8 * size):.2f}",
                f"{full['bytes'] / (4 * size):.2f}",
                f"{max(full['error'], dropped['error']):.1e}",
                f"{PARAMS.error_bound(clients):.1e}",
                f"{plain_seconds:.5f}",
            )
    console.print(table)


def main() -> None:
    args = aggregation_arguments(__doc__.splitlines()[0])
    console = Console(width=200)
    protocol(args.sizes, args.clients, console)
    primitives("clients", args.sizes, args.clients, console)
    plain = federated_part(args.flagship_rounds, small_cohort() if args.smoke else [])
    runs = {
        "none": plain,
        "secagg": variants.with_aggregation(plain, SecAgg.name),
        "ckks, custody clients": variants.encrypted(plain, "clients"),
        "ckks, custody key_holder": variants.encrypted(plain, "key_holder"),
    }
    compare_runs(runs, args.flagship_rounds, args.repeats, console, warm_up=not args.smoke)


if __name__ == "__main__":
    main()
