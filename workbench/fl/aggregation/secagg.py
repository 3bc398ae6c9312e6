"""`aggregation: secagg`: sites mask their moments and updates so that the masks cancel in the sum (Bonawitz et al. 2017).

The protocol is `workbench.crypto.secagg`; this module carries its four rounds over Flower messages. Every aggregation
(the feature moments once, then each round's updates) runs the protocol afresh with new keys:

- before a round trains (`train_requests`): AdvertiseKeys and ShareKeys as two queries to the sampled sites; the
  training message then carries each site's relayed, sealed shares and U2;
- the training reply is the masked input, `y = q(w·θ, w) + masks` with w = n_k / n (the weight rides inside, as under
  CKKS, so the aggregator never learns a site's size and a site that drops out is renormalized away);
- `combine`: Unmasking as a third query to the sites whose input arrived, then the exact integer sum, dequantized, and
  Flower's strategy steps from the average. A site gone before Unmasking is counted dropped; its input stays in the sum.

For the moments the statistics reply is the advertisement, and ShareKeys, the masked moments and Unmasking follow in
`pool_moments`. A site keeps its protocol state (private keys, seed, the shares it holds) in its node state, which every
runtime keeps between the messages of a run and never sends. There is no key to provision and no key holder.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from workbench.crypto.secagg import SecAggError, SecAggParams
from workbench.errors import WorkbenchError
from workbench.fl.aggregation.base import (
    PROTOCOL_OP,
    REPLY_KINDS,
    REQUEST_KINDS,
    ROUND_RECORD,
    Aggregated,
    Aggregation,
    AggregatorEnd,
    FlowerAggregate,
    PooledMoments,
    SiteNode,
    UpdateSight,
    register,
)
from workbench.ledger import Protection
from workbench.models.standardize import Standardizer

if TYPE_CHECKING:
    import numpy as np
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

    from workbench.context import StepContext
    from workbench.crypto import secagg as protocol
    from workbench.fl.plan import FLPlan

MOMENT_PARAMS = SecAggParams(clip_range=2.0**40, quantization_bits=52, modulus_bits=64)
"""Moments are sums over rows (counts, sums of squares), far beyond ±8: they go in 2^52 steps over ±2^40 (step 2^-11 ≈ 5e-4
on a sum), modulo 2^64, for up to 4095 sites. A site whose moments exceed the range says so rather than clipping them."""
STATE = "secagg"
"""Prefix of the node-state records holding a site's protocol state, one per aggregation, between its messages."""
CLIPPED = "secagg-clipped"
"""A site's training metric: how many of its weighted update's values lay beyond ±clip_range and were clipped."""
MOMENTS = 0
"""The aggregation number of the feature moments; round r's updates are aggregation r."""
OPS = {"advertise": "advertise", "share-keys": "share_keys", "mask-moments": "mask_moments", "unmask": "unmask"}
"""Protocol step -> its name in the ledger kind of a request (`secagg.unmask+share_keys`); answers are named by what
they hold (`ANSWERS`)."""
ANSWERS = {"released": "unmask_shares", "shares": "sealed_shares", "masked": "masked_moments", "advert": "public_keys"}
"""Record in a site's answer -> its name in the answer's ledger kind."""


class SecAggRangeError(WorkbenchError, ValueError):
    """A site's moments lie outside the range secure aggregation can sum exactly."""


@register
class SecAgg(Aggregation):
    name = "secagg"
    title = "secure aggregation (masking)"
    update_protection = Protection.MASKED
    exact = False
    fresh_randomness = True
    reads_updates = UpdateSight.AVERAGE
    site_metrics = (CLIPPED,)
    hides_updates = (
        "client-level DP has the aggregator clip each site's update to dp.clip before it noises their average, and under "
        "aggregation secagg the aggregator reads only the sum of the masked updates. Use dp.level: sample, which runs under "
        "secagg since each site noises its own update before masking it, or aggregation: none to trust the aggregator with the updates"
    )

    def __init__(self, plan: FLPlan) -> None:
        super().__init__(plan)
        self.params: SecAggParams = plan.secagg or SecAggParams()
        self._rounds: dict[int, tuple[list[protocol.KeyAdvertisement], tuple[str, ...]]] = {}
        """Round -> the keys the sites advertised (U1) and the sites that shared theirs (U2), between training and Unmasking."""
        self._prepared: dict[int, tuple[list[protocol.KeyAdvertisement], tuple[str, ...], dict[str, list[protocol.EncryptedShares]]]] = {}
        """Round -> U1, U2 and the sealed shares to relay, shared while the aggregation before it unmasked."""

    @classmethod
    def options(cls) -> str | None:
        return "secagg"

    @classmethod
    def prepare(cls, ctx: StepContext, plan: FLPlan) -> Aggregation:
        """The options must fit the sites (shares, threshold, modulus) before any message is sent."""
        (plan.secagg or SecAggParams()).for_sites(plan.parties)
        return super().prepare(ctx, plan)

    def summary(self, ctx: StepContext) -> dict[str, Any]:
        roster = self.params.for_sites(self.plan.parties)
        return {
            **super().summary(ctx),
            "sites": len(roster.sites),
            "num_shares": roster.num_shares,
            "reconstruction_threshold": roster.threshold,
            "clip_range": self.params.clip_range,
            "quantization_bits": self.params.quantization_bits,
            "modulus_bits": self.params.modulus_bits,
            "quantization_error": self.params.error_bound(len(roster.sites)),
        }

    @classmethod
    def describe(cls, server: str, summary: Mapping[str, Any]) -> str:
        return (
            f"Model updates and feature moments travelled masked (protection: {summary['update_protection']}): each site added "
            f"masks agreed with the others by key exchange, which cancel in the sum, so the aggregator '{server}' read only the sum "
            f"of the updates (the average model) and the pooled moments, never a site's own, and no key holder was needed. "
            f"Updates were quantized to {summary['quantization_bits']} bits over ±{summary['clip_range']:g}, so each round's sum is "
            f"off by at most {summary['quantization_error']:.1e} per value; {_clipped(summary)}. {trust_model(summary)} "
            "Still in the clear: each site's training and held-out losses and AUCs, its number of held-out rows, and how many "
            "values it clipped."
        )

    # --- the sites ------------------------------------------------------------------------------------------------
    def site_moments(self, site: SiteNode, count: float, sums: np.ndarray, squares: np.ndarray) -> RecordDict:
        import numpy as np
        from flwr.app import RecordDict

        values = np.concatenate([[count], sums, squares])
        names = ["the row count", *(f"the sum of {f}" for f in self.plan.features.names()), *(f"the sum of squares of {f}" for f in self.plan.features.names())]
        if (beyond := np.flatnonzero(np.abs(values) > MOMENT_PARAMS.clip_range)).size:
            raise SecAggRangeError(
                f"site {site.party!r}: {names[beyond[0]]} is {values[beyond[0]]:.3g}, beyond ±2^40, the range secure aggregation sums "
                "moments in; declare features.bounds (then no statistic of the rows but the count leaves) or rescale the column"
            )
        return RecordDict({"advert": _advertise(site, MOMENTS, MOMENT_PARAMS, values)})

    def site_update(self, site: SiteNode, params: np.ndarray, rows: int, total_rows: float, metrics: dict[str, float]) -> RecordDict:
        """The masked update and, unless this is the last round, the public keys of the site's next round."""
        import numpy as np
        from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

        from workbench.crypto import secagg

        server_round = int(cast(int, site.request["server-round"]))
        weighted = secagg.with_weight(params, rows / total_rows)
        masked = _masked(site, server_round, weighted)
        options = _load(site, server_round)[1]
        clipped = int(np.count_nonzero(np.abs(weighted) > options.clip_range))
        content = RecordDict(
            {
                "arrays": ArrayRecord({"masked": _array(masked.vector)}),
                "metrics": MetricRecord({**metrics, CLIPPED: clipped}),
                "identity": ConfigRecord({"party": site.party}),  # the aggregator unmasks by site
            }
        )
        if server_round < self.plan.rounds:
            content["advert"] = _advertise(site, server_round + 1, options, None)
        return content

    @classmethod
    def serve_site(cls, site: SiteNode) -> RecordDict:
        """One or more protocol steps, each for its own aggregation (`rounds`, 0 the moments): Unmasking of a round goes
        with ShareKeys of the next, so that a round costs one exchange besides training and evaluation."""
        from flwr.app import ArrayRecord, ConfigRecord, RecordDict

        from workbench.crypto import secagg

        request, answer = site.request, RecordDict()
        for op, aggregation in zip(_strings(request, PROTOCOL_OP), cast("list[int]", request["rounds"])):
            if op == "advertise":
                answer["advert"] = _advertise(site, aggregation, _params(str(request["params"])), None)
                continue
            state, params, stored = _load(site, aggregation)  # masked moments come from what the site stored when it advertised
            if op == "share-keys":
                state, shares = secagg.share_keys(state, params, _adverts(request))
                _save(site, aggregation, state, params, stored)
                answer["shares"] = ConfigRecord({"recipients": [s.recipient for s in shares], "ciphertexts": [s.ciphertext for s in shares]})
            elif op == "mask-moments":
                answer["masked"] = ArrayRecord({"vector": _array(_masked(site, aggregation, stored).vector)})
                answer["advert"] = _advertise(site, aggregation + 1, _params(str(request["params"])), None)
            elif op == "unmask":
                _, released = secagg.unmask(state, secagg.UnmaskRequest(tuple(_strings(request, "survivors")), tuple(_strings(request, "dropped"))))
                site.state.pop(_state_key(aggregation), None)  # the aggregation is over: its keys, seed and shares go
                answer["released"] = ConfigRecord(_released(released))
            else:
                raise SecAggError(f"site {site.party!r}: unknown secure-aggregation step {op!r}")
        return answer

    # --- the aggregator -------------------------------------------------------------------------------------------
    def pool_moments(self, end: AggregatorEnd, replies: list[Message]) -> PooledMoments:
        from workbench.crypto import secagg

        what = "federated statistics"
        adverts = [_advert(cast("ConfigRecord", reply.content["advert"])) for reply in replies]
        u2, inbox = self._share(end, adverts, what, MOMENTS)
        mask = {**_steps(("mask-moments", MOMENTS)), "params": self.params.model_dump_json()}
        answers = end.ask_sites({site: {**mask, **_relayed(inbox, site, u2)} for site in u2}, f"{what}: masking the moments")
        inputs = [secagg.MaskedInput(site, _vector(answer["masked"])) for site, answer in answers.items()]
        following = [_advert(cast("ConfigRecord", answer["advert"])) for answer in answers.values()]
        total = self._unmasked(end, MOMENT_PARAMS, adverts, u2, inputs, following, what, MOMENTS)[0]
        features = len(self.plan.features.names())
        count, sums, squares = float(total[0]), total[1 : 1 + features], total[1 + features :]
        return PooledMoments(Standardizer.from_moments(count, sums, squares), count)

    def round_config(self, pooled: PooledMoments) -> dict[str, Any]:
        assert pooled.rows is not None
        return {**super().round_config(pooled), "total-rows": float(pooled.rows)}  # sites weight their updates by n_k / n

    def train_requests(self, end: AggregatorEnd, sites: list[str], server_round: int) -> dict[str, dict[str, Any]]:
        """Each training message carries that site's relayed shares and U2. The keys were shared while the previous
        aggregation unmasked; if the sites sampled now are not exactly those that shared them, AdvertiseKeys and ShareKeys
        run afresh with these sites first."""
        what = f"round {server_round}"
        adverts, u2, inbox = self._prepared.pop(server_round, ([], (), {}))
        if set(u2) != set(sites):
            advertise = {**_steps(("advertise", server_round)), "params": self.params.model_dump_json()}
            answers = end.ask_sites(dict.fromkeys(sites, advertise), f"{what}: advertising keys")
            adverts = [_advert(cast("ConfigRecord", answer["advert"])) for answer in answers.values()]
            u2, inbox = self._share(end, adverts, what, server_round)
        self._rounds[server_round] = (adverts, u2)
        return {site: {"server-round": server_round, **_relayed(inbox, site, u2)} for site in u2}

    def combine(self, end: AggregatorEnd, replies: list[Message], flower: FlowerAggregate) -> Aggregated:
        from workbench.crypto import secagg

        server_round = flower.server_round
        adverts, u2 = self._rounds.pop(server_round)
        inputs = [secagg.MaskedInput(str(reply.content["identity"]["party"]), _vector(reply.content["arrays"])) for reply in replies]
        following = [_advert(cast("ConfigRecord", reply.content["advert"])) for reply in replies if "advert" in reply.content]
        total, gone = self._unmasked(end, self.params, adverts, u2, inputs, following, f"round {server_round}", server_round)
        flower.drop(gone)
        return flower.step_from(secagg.weighted_average(total))

    def _share(
        self, end: AggregatorEnd, adverts: list[protocol.KeyAdvertisement], what: str, aggregation: int
    ) -> tuple[tuple[str, ...], dict[str, list[protocol.EncryptedShares]]]:
        """ShareKeys on its own: every site that advertised gets the list of keys; the sealed shares come back to relay."""
        requests = {a.site: {**_steps(("share-keys", aggregation)), **_adverts_record(adverts)} for a in adverts}
        return _relay(end.ask_sites(requests, f"{what}: sharing keys"))

    def _unmasked(
        self,
        end: AggregatorEnd,
        params: SecAggParams,
        adverts: list[protocol.KeyAdvertisement],
        u2: Sequence[str],
        inputs: list[protocol.MaskedInput],
        following: list[protocol.KeyAdvertisement],
        what: str,
        aggregation: int,
    ) -> tuple[np.ndarray, list[str]]:
        """Unmasking with the sites whose input arrived, together with ShareKeys of the next aggregation among the sites
        that advertised keys for it (`following`): the dequantized sum, and the survivors that did not answer."""
        from workbench.crypto import secagg

        request = secagg.unmask_request(u2, inputs)
        unmask = {"survivors": list(request.survivors), "dropped": list(request.dropped)}
        keys = _adverts_record(following)
        requests = {}
        for site in sorted({*request.survivors, *(a.site for a in following)}):  # sorted: the ledger repeats run to run
            steps = [("unmask", aggregation)] * (site in request.survivors) + [("share-keys", aggregation + 1)] * (site in keys["sites"])
            requests[site] = {**_steps(*steps), **(unmask if site in request.survivors else {}), **(keys if site in keys["sites"] else {})}
        answers = end.ask_sites(requests, f"{what}: unmasking")
        if following:
            self._prepared[aggregation + 1] = (following, *_relay({site: answer for site, answer in answers.items() if "shares" in answer}))
        responses = [_response(site, cast("ConfigRecord", answer["released"])) for site, answer in answers.items() if "released" in answer]
        try:
            total = secagg.unmasked_sum(params, adverts, u2, inputs, responses)
        except SecAggError as error:
            raise type(error)(f"{what}: {error}") from None
        return secagg.dequantize(params, total), sorted(set(request.survivors) - {r.site for r in responses})

    def label(self, kind: str, content: RecordDict) -> tuple[str, str]:
        """Requests are named by their protocol steps, answers by what they hold; a masked update or masked moments are
        `masked`, shares sealed for another site `encrypted`, everything else (public keys, released shares) `none`."""
        configs = content.config_records
        request = configs["config"] if "config" in configs else None
        if kind == REQUEST_KINDS["query"] and request is not None and PROTOCOL_OP in request:
            ops = _strings(request, PROTOCOL_OP)
            return "secagg." + "+".join(OPS[op] for op in ops), (Protection.ENCRYPTED if "mask-moments" in ops else Protection.NONE).value
        if kind == REQUEST_KINDS["train"] and ROUND_RECORD in configs:
            return "fl.model_and_sealed_shares", Protection.ENCRYPTED.value
        if kind == REPLY_KINDS["train"]:
            return kind, self.update_protection.value
        held = [name for name in ANSWERS if name in content]
        if not held:
            return kind, Protection.NONE.value
        protection = Protection.MASKED if "masked" in held else Protection.ENCRYPTED if "shares" in held else Protection.NONE
        return "secagg." + "+".join(ANSWERS[name] for name in held), protection.value


def _clipped(summary: Mapping[str, Any]) -> str:
    """How many update values the sites clipped to ±clip_range over the rounds: clipping changes the model, unlike rounding."""
    counts = [int(metrics.get(CLIPPED, 0)) for sites in summary.get("rounds", {}).values() for metrics in sites.values()]
    total = sum(counts)
    if not total:
        return "no site clipped any value"
    return f"{total} values were clipped in all (raise secagg.clip_range above the largest weighted parameter, or the model differs from plain FedAvg's)"


def trust_model(summary: Mapping[str, Any]) -> str:
    """What the protocol assumes and who could break it together, for this recipe's numbers of sites, shares and threshold."""
    sites, shares, threshold = int(summary["sites"]), int(summary["num_shares"]), int(summary["reconstruction_threshold"])
    if sites == 2:
        return (
            "Trust model: a semi-honest aggregator (it follows the protocol and reads all it receives). With two sites the sum "
            "is no protection between them: each site, knowing its own update, reads the other's from the average, and so does "
            "the aggregator colluding with either."
        )
    liar = max(0, 2 * threshold - shares)
    return (
        f"Trust model: a semi-honest aggregator (it follows the protocol and reads all it receives). Each site's seed and mask "
        f"key were Shamir-shared among {shares} sites with threshold {threshold}: the aggregator colluding with {threshold} "
        f"of the other sites holding a site's shares could rebuild both and read that site's update, and fewer learn nothing "
        f"beyond the sum. An aggregator that lies about which sites dropped out (beyond the semi-honest model; the paper's "
        f"consistency check is not run) needs only {liar} colluding site{'s' if liar != 1 else ''} to unmask another. "
        f"A round survives sites that drop out as long as {threshold} of them answer."
    )


# --- records: the protocol's messages as Flower carries them --------------------------------------------------------


def _steps(*steps: tuple[str, int]) -> dict[str, Any]:
    """A protocol request's header: its steps, each with its aggregation (0 the moments, r round r), and the kind that
    serves them. `server-round` is the first step's, as in a training message."""
    return {PROTOCOL_OP: [op for op, _ in steps], "rounds": [n for _, n in steps], "aggregation": SecAgg.name, "server-round": steps[0][1]}


def _relay(answers: Mapping[str, RecordDict]) -> tuple[tuple[str, ...], dict[str, list[protocol.EncryptedShares]]]:
    """U2 (the sites whose sealed shares came back) and each recipient's shares, from ShareKeys answers."""
    from workbench.crypto import secagg

    shares = [
        secagg.EncryptedShares(site, recipient, ciphertext)
        for site, answer in answers.items()
        for recipient, ciphertext in zip(_strings(answer["shares"], "recipients"), cast("list[bytes]", answer["shares"]["ciphertexts"]))
    ]
    u2, inbox = secagg.relay(shares)
    return tuple(site for site in u2 if site in answers), inbox


def _advertise(site: SiteNode, aggregation: int, params: SecAggParams, stored: np.ndarray | None) -> ConfigRecord:
    """A fresh state for one aggregation (new keys), kept at the site; its public keys, to send."""
    from flwr.app import ConfigRecord

    from workbench.crypto import secagg

    state, advert = secagg.advertise_keys(site.party)
    _save(site, aggregation, state, params, stored)
    return ConfigRecord({"site": advert.site, "cipher": advert.cipher_public, "mask": advert.mask_public})


def _masked(site: SiteNode, aggregation: int, values: np.ndarray) -> protocol.MaskedInput:
    """MaskedInputCollection at a site: the relayed shares and U2 come in `site.request`."""
    from workbench.crypto import secagg

    state, params, stored = _load(site, aggregation)
    request = site.request
    shares = [secagg.EncryptedShares(sender, site.party, c) for sender, c in zip(_strings(request, "senders"), cast("list[bytes]", request["ciphertexts"]))]
    state, masked = secagg.masked_input(state, shares, _strings(request, "u2"), values)
    _save(site, aggregation, state, params, stored)
    return masked


def _relayed(inbox: Mapping[str, list[protocol.EncryptedShares]], site: str, u2: Sequence[str]) -> dict[str, Any]:
    mine = inbox.get(site, [])
    return {"u2": list(u2), "senders": [s.sender for s in mine], "ciphertexts": [s.ciphertext for s in mine]}


def _adverts_record(adverts: list[protocol.KeyAdvertisement]) -> dict[str, Any]:
    return {"sites": [a.site for a in adverts], "ciphers": [a.cipher_public for a in adverts], "masks": [a.mask_public for a in adverts]}


def _adverts(record: ConfigRecord) -> list[protocol.KeyAdvertisement]:
    from workbench.crypto import secagg

    ciphers, masks = cast("list[bytes]", record["ciphers"]), cast("list[bytes]", record["masks"])
    return [secagg.KeyAdvertisement(site, c, m) for site, c, m in zip(_strings(record, "sites"), ciphers, masks)]


def _advert(record: ConfigRecord) -> protocol.KeyAdvertisement:
    from workbench.crypto import secagg

    return secagg.KeyAdvertisement(str(record["site"]), cast(bytes, record["cipher"]), cast(bytes, record["mask"]))


def _released(response: protocol.UnmaskResponse) -> dict[str, Any]:
    seeds, keys = response.seed_shares, response.key_shares
    return {"seed-sites": list(seeds), "seed-shares": list(seeds.values()), "key-sites": list(keys), "key-shares": list(keys.values())}


def _response(site: str, record: ConfigRecord) -> protocol.UnmaskResponse:
    from workbench.crypto import secagg

    seeds = dict(zip(_strings(record, "seed-sites"), cast("list[bytes]", record["seed-shares"])))
    keys = dict(zip(_strings(record, "key-sites"), cast("list[bytes]", record["key-shares"])))
    return secagg.UnmaskResponse(site, seeds, keys)


def _strings(record: Mapping[str, Any], key: str) -> list[str]:
    """A list of names from a record; Flower stores an empty list as absent or as an empty list alike."""
    return [str(value) for value in record.get(key, [])]


def _array(vector: np.ndarray) -> Any:
    from flwr.app import Array

    return Array(vector)


def _vector(record: Any) -> np.ndarray:
    """The one array of an answer's array record (Flower types a record dict's values as any of its record kinds)."""
    vector: np.ndarray = next(iter(cast("ArrayRecord", record).values())).numpy()
    return vector


# --- a site's protocol state, in its node state ---------------------------------------------------------------------


@lru_cache(maxsize=16)
def _params(raw: str) -> SecAggParams:
    """Options as a site reads them back, every message: parsed once per process (they are frozen)."""
    return SecAggParams.model_validate_json(raw)


@lru_cache(maxsize=16)
def _roster(params: str, sites: tuple[str, ...]) -> protocol.Roster:
    return _params(params).for_sites(sites)


def _state_key(aggregation: int) -> str:
    return f"{STATE}-{aggregation}"


def _save(site: SiteNode, aggregation: int, state: protocol.SiteState, params: SecAggParams, stored: np.ndarray | None) -> None:
    from flwr.app import ConfigRecord

    record: dict[str, Any] = {"state": _encode_state(state), "params": params.model_dump_json()}
    if stored is not None and len(stored):
        record["stored"] = [float(value) for value in stored]
    site.state[_state_key(aggregation)] = ConfigRecord(record)


def _load(site: SiteNode, aggregation: int) -> tuple[protocol.SiteState, SecAggParams, np.ndarray]:
    import numpy as np

    if _state_key(aggregation) not in site.state:
        raise SecAggError(
            f"site {site.party!r} holds no secure-aggregation state for aggregation {aggregation}: it was asked a later step before advertising keys"
        )
    record = cast("ConfigRecord", site.state[_state_key(aggregation)])
    stored = np.asarray(record.get("stored", []), dtype=np.float64)
    return _decode_state(cast(bytes, record["state"])), _params(str(record["params"])), stored


def _encode_state(state: protocol.SiteState) -> bytes:
    """The state as JSON (bytes in base64): it stays in the site's own node state, so nothing about it is secret from the
    site; JSON rather than pickle so that reading it back runs no code."""
    data = asdict(replace(state, roster=None, keys={}))
    data["roster"] = None if state.roster is None else {"params": state.roster.params.model_dump_json(), "sites": list(state.roster.sites)}
    data["keys"] = {site: [base64.b64encode(a.cipher_public).decode(), base64.b64encode(a.mask_public).decode()] for site, a in state.keys.items()}
    for name in ("cipher_private", "mask_private", "seed"):
        data[name] = base64.b64encode(data[name]).decode()
    data["held"] = {site: [base64.b64encode(part).decode() for part in pair] for site, pair in state.held.items()}
    return json.dumps(data).encode()


def _decode_state(raw: bytes) -> protocol.SiteState:
    from workbench.crypto import secagg

    data = json.loads(raw)
    b64 = base64.b64decode
    roster = None if data["roster"] is None else _roster(data["roster"]["params"], tuple(data["roster"]["sites"]))
    return secagg.SiteState(
        site=data["site"],
        cipher_private=b64(data["cipher_private"]),
        mask_private=b64(data["mask_private"]),
        roster=roster,
        keys={site: secagg.KeyAdvertisement(site, b64(c), b64(m)) for site, (c, m) in data["keys"].items()},
        seed=b64(data["seed"]),
        held={site: (b64(s), b64(k)) for site, (s, k) in data["held"].items()},
        u2=tuple(data["u2"]),
        released=dict(data["released"]),
    )
