"""The generator's exact output: the same options must keep giving the same bytes.

The golden digests were computed from the generator's output before it was split into
modules; a change here means the landing files (or the reference, the summary or the
progress messages) changed, which breaks the promise that a seed reproduces a landing zone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from odavl_pipeline.generate import GenerateOptions, generate_landing, synthetic_reference

CASES = {
    # Every irregularity at high rates, three files a day (some gzipped), a cut-off last
    # day and a chain that continues an existing head.
    "irregular": GenerateOptions(
        seed=11,
        days=3,
        end_day=dt.date(2026, 11, 3),
        organizations=3,
        usage_per_day=60,
        errors_per_day=25,
        attestations_per_day=15,
        audits_per_day=3,
        duplicate_share=0.08,
        conflict_share=0.04,
        malformed_share=0.08,
        late_share=0.1,
        gzip_share=0.5,
        files_per_day=3,
        not_after=dt.datetime(2026, 11, 3, 15, 30, tzinfo=dt.UTC),
        chain_heads=(("odavl-test-org", "web-app", "ab" * 32),),
    ),
    # Nine days over a leap day, every file gzipped, late records up to a week later.
    "gzip_leap_day": GenerateOptions(
        seed=3,
        days=9,
        end_day=dt.date(2024, 3, 4),
        organizations=1,
        usage_per_day=40,
        errors_per_day=10,
        attestations_per_day=4,
        audits_per_day=2,
        late_share=0.15,
        malformed_share=0.03,
        gzip_share=1.0,
        files_per_day=2,
    ),
    # More organizations than there are distinct names (numbered repeats), default shares.
    "many_organizations": GenerateOptions(
        seed=5,
        days=2,
        end_day=dt.date(2025, 6, 30),
        organizations=250,
        usage_per_day=20,
        errors_per_day=4,
        attestations_per_day=2,
        audits_per_day=1,
        gzip_share=0.0,
        files_per_day=1,
    ),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digests(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under root."""
    return {
        path.relative_to(root).as_posix(): sha256(path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run_digests(out: Path, options: GenerateOptions) -> dict[str, object]:
    """Digests of everything one run produces: files, returned summary, messages, reference."""
    messages: list[str] = []
    summary = generate_landing(out, options, messages.append)
    summary_dict = summary.to_dict()
    summary_dict.pop("out")
    return {
        "files": file_digests(out),
        "summary": sha256(json.dumps(summary_dict, sort_keys=True).encode()),
        "messages": sha256("\n".join(messages).encode()),
        "reference": sha256(json.dumps(synthetic_reference(options)).encode()),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_bytes_are_unchanged(case: str, tmp_path: Path) -> None:
    assert run_digests(tmp_path, CASES[case]) == GOLDEN[case]


GOLDEN: dict[str, dict[str, object]] = {
    "gzip_leap_day": {
        "files": {
            "audit_results/2024-02-25/guardian-20240225-s3-000.ndjson.gz": "ac73670af3abed54ac6fb4695131f4099be9fbe39d6076c5d0264a6bbdae9d83",
            "audit_results/2024-02-25/guardian-20240225-s3-001.ndjson.gz": "ac73670af3abed54ac6fb4695131f4099be9fbe39d6076c5d0264a6bbdae9d83",
            "audit_results/2024-02-26/guardian-20240226-s3-000.ndjson.gz": "43ecc099ba0f2cec45f70b18ccc47744a58569a8bc47b437bbd8074b95097ab8",
            "audit_results/2024-02-26/guardian-20240226-s3-001.ndjson.gz": "7cf75b77a01adc3a7d871311462080a872a10ec177fa4a4b586d49b995ba1e9a",
            "audit_results/2024-02-27/guardian-20240227-s3-000.ndjson.gz": "0d163fb99b51b9fb9aec5b59020593d684ad884caf9b44fdc339d883a4db018f",
            "audit_results/2024-02-27/guardian-20240227-s3-001.ndjson.gz": "2609a49484b30d0560d63cd371701f568493cc6802226cb74f9053f10e9ee381",
            "audit_results/2024-02-28/guardian-20240228-s3-000.ndjson.gz": "22ee349b74431aad277b3870ad6b9be11841a6df25f2dec06bd390e549a61e68",
            "audit_results/2024-02-28/guardian-20240228-s3-001.ndjson.gz": "dd86524e9aa62a2430b5786e21b4c20e45b2b7c79585c0abccb77fb3e3c58959",
            "audit_results/2024-02-29/guardian-20240229-s3-000.ndjson.gz": "bb88e634b0541405ca3b7c92af156b75f65e8a1d27af5eaed3e553695617a9b2",
            "audit_results/2024-02-29/guardian-20240229-s3-001.ndjson.gz": "fec3c9cc568dde20f15bfa1a11415d61bac956dcb3fddc2ea9f182a2673f02f1",
            "audit_results/2024-03-01/guardian-20240301-s3-000.ndjson.gz": "506c21f8d274ee838193b8263cb24321c8a65901bcebb35dd9459bf26c38ee0c",
            "audit_results/2024-03-01/guardian-20240301-s3-001.ndjson.gz": "d34029b6860e7ddabe392a739ddea05ac595dff3a19d6c46d5ed72b1e27c9e4c",
            "audit_results/2024-03-02/guardian-20240302-s3-000.ndjson.gz": "9d52de148060f01e66176844706e8ec58a42ee49149ac2373de898f49919db60",
            "audit_results/2024-03-02/guardian-20240302-s3-001.ndjson.gz": "b0d2b4c2ebadda0cafe5150c7c5fbed7f3cf9eede109c7f2842dfd0838476ea1",
            "audit_results/2024-03-03/guardian-20240303-s3-000.ndjson.gz": "03ddee2ed37c2a53c408a0c253ab6ba355246653af685645e45acca284ccaf77",
            "audit_results/2024-03-03/guardian-20240303-s3-001.ndjson.gz": "ad37c8e050c8b28740d38a2d6cbd3a44736899a2099ec144afed7d3342c4d62f",
            "audit_results/2024-03-04/guardian-20240304-s3-000.ndjson.gz": "fcf8e768e5881cfd9e6c5608e6f2aa76e3ee592e258e2045d3d8ae0acb52159f",
            "audit_results/2024-03-04/guardian-20240304-s3-001.ndjson.gz": "ac4374faa685f914ad15e3c59689b3fbbd30dbdcf2cc1ef946ab06a293090a4c",
            "error_events/2024-02-25/insight-20240225-s3-000.ndjson.gz": "a3275985ef995c304d6b27f28028491e037c8521e89495ffa2f953dd7d451210",
            "error_events/2024-02-25/insight-20240225-s3-001.ndjson.gz": "ca604ee02365f175dac4994f179f25e250580bf6323b7bd3ef81442cacb80e2d",
            "error_events/2024-02-26/insight-20240226-s3-000.ndjson.gz": "a030afce6d5574079263cc5d23b61fb98f541f47d9cf34040fb8cf97532655e2",
            "error_events/2024-02-26/insight-20240226-s3-001.ndjson.gz": "f4ec0cc6730eb1ddfa9c81ffb21b624c9ed471df24b50cdab72fce022d02b2f9",
            "error_events/2024-02-27/insight-20240227-s3-000.ndjson.gz": "b89ddb771aca9b60584de0e64745f7555ce8aafc10d50486eb9fb76fdf318741",
            "error_events/2024-02-27/insight-20240227-s3-001.ndjson.gz": "cb83cb7805fdd42dd81cdf05bcabbc6621d47443dec0cca5ec7782744502baa3",
            "error_events/2024-02-28/insight-20240228-s3-000.ndjson.gz": "78bf154e8a8911f7b08de229ec7e8aaed31f2a4ad2312af11a21df47ae89bebe",
            "error_events/2024-02-28/insight-20240228-s3-001.ndjson.gz": "5503306e2c65636e161613c402c5976985c95e440c741299a747bd0ebf1141d1",
            "error_events/2024-02-29/insight-20240229-s3-000.ndjson.gz": "cb9d7bf920433c82cd3f502d8fe48b9b5a015eba12653a6577212383a02e1c4e",
            "error_events/2024-02-29/insight-20240229-s3-001.ndjson.gz": "148b372d5918e03d2caead344e4d88451c855de19b91a0e9aeb87f1b0eb9b533",
            "error_events/2024-03-01/insight-20240301-s3-000.ndjson.gz": "5584faae7c61e16c4225ba359295b098953e9b13d5577f51eb52c3c967522b2b",
            "error_events/2024-03-01/insight-20240301-s3-001.ndjson.gz": "99e8df7f80f435de0579d2df0e09b04d161280ec0b4c72000533d4143081b447",
            "error_events/2024-03-02/insight-20240302-s3-000.ndjson.gz": "e0a8c441b7589dc49d68c514c88a4fdedb88b5b01fea6bc46c7e62f3d31d02e4",
            "error_events/2024-03-02/insight-20240302-s3-001.ndjson.gz": "907305b1f9fd8a8558dcc505d0fcaea1960f2aa346c73a58d08bad4fd72dcf0f",
            "error_events/2024-03-03/insight-20240303-s3-000.ndjson.gz": "2cc62e223d6ea8444d7fa9dc18296a6474cea812b87925222889698e1da0ef62",
            "error_events/2024-03-03/insight-20240303-s3-001.ndjson.gz": "bfa474d1025b4f0fda6113dbbcd06d05d2dce5157d41af2d061e614f2fd925b1",
            "error_events/2024-03-04/insight-20240304-s3-000.ndjson.gz": "520da2a2c605bf153f88a49b41b44259246ac0bb6737fd61e9b4af9d08795066",
            "error_events/2024-03-04/insight-20240304-s3-001.ndjson.gz": "467e9368f6df9fda3c1f05a54b2f18cd9b7288c9d2a044e1a12c1733de260cff",
            "fix_attestations/2024-02-25/autopilot-20240225-s3-000.ndjson.gz": "0621ec404929aa7d2579171f60d550beb54c365bff0d6d457e9f8616d0081366",
            "fix_attestations/2024-02-25/autopilot-20240225-s3-001.ndjson.gz": "56881ea24af5fa60bbf99104c8121e827b0932989a6fcc811351db387f4639e8",
            "fix_attestations/2024-02-26/autopilot-20240226-s3-000.ndjson.gz": "fc4b7ee47933209dbf3d1e8e953643ba42ce691460a353cc4f3f201f2d9d53f2",
            "fix_attestations/2024-02-26/autopilot-20240226-s3-001.ndjson.gz": "a70d0ea421e0da03b6f62e6c7a4575c25059a1ee51cc4869da98edb99ffe989e",
            "fix_attestations/2024-02-27/autopilot-20240227-s3-000.ndjson.gz": "6e51676cc8d86a811ee93fd4cf3b40388b79e8bcd50fae48adec9b48c01a76d7",
            "fix_attestations/2024-02-27/autopilot-20240227-s3-001.ndjson.gz": "74755101832e1e7a6d6443bdf1d4311f08aef5f6ecd5f4109408739c553f9e8a",
            "fix_attestations/2024-02-28/autopilot-20240228-s3-000.ndjson.gz": "f4316eb99afd136e60277ec0244646b2c74e97889ad35cb70e9d88c174276d7f",
            "fix_attestations/2024-02-28/autopilot-20240228-s3-001.ndjson.gz": "82d7d9e15337373ec523f99e320deccb54e0930bb4be8107ffebcc9b8c52c193",
            "fix_attestations/2024-02-29/autopilot-20240229-s3-000.ndjson.gz": "ab538b380a44f937c36bb217b437402ab82ca5e874f1d54f761bdc69bb34a104",
            "fix_attestations/2024-02-29/autopilot-20240229-s3-001.ndjson.gz": "5bc13755a70366ff45d7509f1a926f15f0898269b1e6ce35bda18a674434a3f3",
            "fix_attestations/2024-03-01/autopilot-20240301-s3-000.ndjson.gz": "b10fb387485d247dcec4301cbe6d4e7ecaaa179820ba801bca1e34e42861e1e5",
            "fix_attestations/2024-03-01/autopilot-20240301-s3-001.ndjson.gz": "9fe4eb11c6281f69238cdb1f5db76dd11e1d434f3754e23dc20ea74612af4433",
            "fix_attestations/2024-03-02/autopilot-20240302-s3-000.ndjson.gz": "ca6388d60b080bab9c9f5e75e0e64f6f3a5eb138271a9cf019dec24a26559118",
            "fix_attestations/2024-03-02/autopilot-20240302-s3-001.ndjson.gz": "3f5bc9201ecd31e7db4ff602abe901f16dbb61ed2c5c2d1944415703c47d61ce",
            "fix_attestations/2024-03-03/autopilot-20240303-s3-000.ndjson.gz": "ac73670af3abed54ac6fb4695131f4099be9fbe39d6076c5d0264a6bbdae9d83",
            "fix_attestations/2024-03-03/autopilot-20240303-s3-001.ndjson.gz": "2780d79b87c6a427bac0aff92a673d165fc895b71b33658163ca0eec4a2dc231",
            "fix_attestations/2024-03-04/autopilot-20240304-s3-000.ndjson.gz": "8ddff5a4f5992f691fc941db6861aff77888599eca8b53740c11d78023f22e11",
            "fix_attestations/2024-03-04/autopilot-20240304-s3-001.ndjson.gz": "adee5afe3a13c1013e15fdbfb820f4bb0ee208aea0f33fb66672ca4064476777",
            "reference.json": "4cfe9b108cbc0588610d83703445e9a4e2bef8c810a0783e7338d06a14d42ba6",
            "usage_events/2024-02-25/billing-20240225-s3-000.ndjson.gz": "2344b62f2b8a0c4032e95aadc3db6abf4393fc73e4b8feeff52ffe5fad0ea136",
            "usage_events/2024-02-25/billing-20240225-s3-001.ndjson.gz": "7ae33df5c4b32a314b64cd724cc5ee2400d6fe3b0198ec7323323e10911b6958",
            "usage_events/2024-02-26/billing-20240226-s3-000.ndjson.gz": "d94ae54b56cd41fafdd65d845b0e1d776740ff214705011eb4eb45e4a18ebec5",
            "usage_events/2024-02-26/billing-20240226-s3-001.ndjson.gz": "4d83afa566272641b707e841e6797ca6dd24ff068c464dd00909674aa185801d",
            "usage_events/2024-02-27/billing-20240227-s3-000.ndjson.gz": "b26844f49bff0c0917ad1a9216a206ee3b526b4b90bbb4a1696766f217d2a3f1",
            "usage_events/2024-02-27/billing-20240227-s3-001.ndjson.gz": "74c49f07c64d09208e5b0174e39136504d8951df1a2f2d6057ca16241b919fb0",
            "usage_events/2024-02-28/billing-20240228-s3-000.ndjson.gz": "33d9905611e7137b441bb1bab7a389613706680bfe40a0dfb41b08513729a940",
            "usage_events/2024-02-28/billing-20240228-s3-001.ndjson.gz": "2c6aec5b056b3a5f5ca1ea4faf2a8873e57a963a59cfcd4366c0f4a2f17abe41",
            "usage_events/2024-02-29/billing-20240229-s3-000.ndjson.gz": "da329e86568b509542de3d45ba74a1c49c794e97b1c51ff083fb9242aec31708",
            "usage_events/2024-02-29/billing-20240229-s3-001.ndjson.gz": "7d0811399d0b7018c6bb56e8f9c552eeb5bc0ff0a2e22d067c6b582b5a864e00",
            "usage_events/2024-03-01/billing-20240301-s3-000.ndjson.gz": "727341421aaec69a48d6497581373325ebb0a3cff82f5474bd9d56f1f2adfa13",
            "usage_events/2024-03-01/billing-20240301-s3-001.ndjson.gz": "d90032b545149a3f841a0d4c28590b498e2f82eefc8d5ee7d06b0ba690597f00",
            "usage_events/2024-03-02/billing-20240302-s3-000.ndjson.gz": "4ea82a8bc84edc879a3ced2636a08760463fc268acaad085a62b34feb8d24b8a",
            "usage_events/2024-03-02/billing-20240302-s3-001.ndjson.gz": "a888dacb61d8d9e1226cf6b7f87e49961bc2bed2154ebbbf304c135b468cbf75",
            "usage_events/2024-03-03/billing-20240303-s3-000.ndjson.gz": "b88d2d3dfafcd47350bdc2af50adce08ae3993eb5e213022efedda2aa66759d3",
            "usage_events/2024-03-03/billing-20240303-s3-001.ndjson.gz": "720d7d3a13d64ff997100638d72bd83df3cec14ad00f6d23cd559ab73f518fc3",
            "usage_events/2024-03-04/billing-20240304-s3-000.ndjson.gz": "4f77756ee024ed17a1d19be6bcb159ebf6fee47af1842fdf1a53c045d7474c2a",
            "usage_events/2024-03-04/billing-20240304-s3-001.ndjson.gz": "d49197bfa32fa644bdc10f601391c6fdfa3dae5e483e4d5ef01fb6e798ed7918",
        },
        "summary": "e02f776edd59656d815c66e096ee7894e06a7b2b5ea7246be5276f5286041d4c",
        "messages": "a67a02d45e95065fc2f003bcb209103b1a8e9663af7e245bac62160e5a48b869",
        "reference": "abeae0859bcfa475d27fb35dbc88f90b7ccbcc83be11b2beff081b5d37783b30",
    },
    "irregular": {
        "files": {
            "audit_results/2026-11-01/guardian-20261101-s11-000.ndjson": "7d11a79ca0c9b58a8f21223655157030620dd74fac0bed7463835ef6456de67a",
            "audit_results/2026-11-01/guardian-20261101-s11-001.ndjson": "7e031859f78dfa68682ceed34927b2ef5011f9f6d89e1a162b97b46679db21ca",
            "audit_results/2026-11-01/guardian-20261101-s11-002.ndjson.gz": "39f3a254ba6663afdc6d430037cbff4d87423f3352b0baf072329e10ae6f6f89",
            "audit_results/2026-11-02/guardian-20261102-s11-000.ndjson": "e2073f996b50599c0a556b815b9da75a87f1f8f31b8f80d1403e5f0285e19773",
            "audit_results/2026-11-02/guardian-20261102-s11-001.ndjson": "99f763614781fab33855c02be1a4ce95a35e721d0a6511e620734d1880ffdf9f",
            "audit_results/2026-11-02/guardian-20261102-s11-002.ndjson": "75683b7e88d587273320072c27df282ce9a286e900da3a7750964a6b0b5a7b04",
            "audit_results/2026-11-03/guardian-20261103-s11-000.ndjson.gz": "e8e317a2be301bfeb36be5664dd18cb3d52c836da47cfb9dd45d95419843be27",
            "audit_results/2026-11-03/guardian-20261103-s11-001.ndjson.gz": "8c43fa4819f70e1096b9dd610f184c1c697fb5ce1d6f99ddd0bfd6c1148e831f",
            "audit_results/2026-11-03/guardian-20261103-s11-002.ndjson": "6bac33d35061887c48fbd91ae0e3df183f8fb78edb6609eb08784787c602a066",
            "error_events/2026-11-01/insight-20261101-s11-000.ndjson.gz": "6475e19603403c504bed83b429b3563bd9cb0d99a8a833733d5a67fa38edee05",
            "error_events/2026-11-01/insight-20261101-s11-001.ndjson": "2a0a1f89a271eb12afa359c1b3fdfa3aaab6631c05ab1ca09736a2462b00aa70",
            "error_events/2026-11-01/insight-20261101-s11-002.ndjson.gz": "e9b2102abd8383843aae182bf5ff6d0bc5ca5604cc4f476a85dc9be30533762a",
            "error_events/2026-11-02/insight-20261102-s11-000.ndjson": "7f3308111a08d41d6e75dcf7eff2901e58c07e8dbcf1577dc3c530fb55c61f2e",
            "error_events/2026-11-02/insight-20261102-s11-001.ndjson.gz": "eb73a7c8f9fee75b8a0e8e036e4a2809c1cc7225d4ae332682b5855777f46851",
            "error_events/2026-11-02/insight-20261102-s11-002.ndjson.gz": "ac58491cf3523af18240841cecdc429fdbfe859f870c622453fc2b31b1031efe",
            "error_events/2026-11-03/insight-20261103-s11-000.ndjson.gz": "5eb1aac05d8ce29e70039479d344de4e0798ddfc3434cc11bf9caf0f3586d584",
            "error_events/2026-11-03/insight-20261103-s11-001.ndjson": "36be9502a41b9580b3e37ee48f421b2a0106d34314891937c90f74a361ad38fd",
            "error_events/2026-11-03/insight-20261103-s11-002.ndjson": "c9b8635faf25ce5f887557f8f32cb6a30d789b0f211a0696c7219d22c7157b0a",
            "fix_attestations/2026-11-01/autopilot-20261101-s11-000.ndjson": "ea71052d2787f15f9e033ee4994f544dac1696e8d0cb03779e0b3cbce1a65ef5",
            "fix_attestations/2026-11-01/autopilot-20261101-s11-001.ndjson.gz": "2edd4f626d57e3b3359641606b245970a4e5c85b09c8c5c4513134424ad0cf80",
            "fix_attestations/2026-11-01/autopilot-20261101-s11-002.ndjson.gz": "bef0696300e920e9a41ea1760d48325e6f7d5e5c7d10e5c6b7523d30447e262b",
            "fix_attestations/2026-11-02/autopilot-20261102-s11-000.ndjson.gz": "10cb7cabba15dad39a68d608ec4c419466689274b26eb7592278ada8c96495d2",
            "fix_attestations/2026-11-02/autopilot-20261102-s11-001.ndjson": "1f95dd8c0d65c670d0776fc4d222fd2e96ecd0ddf6225d75547293b6c2766ead",
            "fix_attestations/2026-11-02/autopilot-20261102-s11-002.ndjson": "d356fc228f0f02f36b128ab337f0cfe5ba4459b6ab213eaa7b43823c76c07bbd",
            "fix_attestations/2026-11-03/autopilot-20261103-s11-000.ndjson": "0bb436df105fbe5c49e1bc346be70954e69142cf6527b8002cbf112d46f25eb7",
            "fix_attestations/2026-11-03/autopilot-20261103-s11-001.ndjson.gz": "c9e5f5293c2b4117e8146d793be4414e048192d3d6e24bc9995765dfa3ac72ef",
            "fix_attestations/2026-11-03/autopilot-20261103-s11-002.ndjson": "a92bd6bd7d294c1da9997433c6039dd44ff29951cf5c2be0385cdd5e2e31a385",
            "reference.json": "49447012dff97dedde77d2a6be49728ab991e34c7b73e14a450ad367738b908d",
            "usage_events/2026-11-01/billing-20261101-s11-000.ndjson": "bc1f5eaed53af47cd7877e2701ab02410ad6558f910b9f9b7b7a9ca1be45f9bc",
            "usage_events/2026-11-01/billing-20261101-s11-001.ndjson": "9e6b083519b169cc92efe3b3dda01fd43cba75162cb1fa1dd23cc714edd6e45f",
            "usage_events/2026-11-01/billing-20261101-s11-002.ndjson.gz": "3ae5b64a82f2f72e8a7b5767a9a1d28566a72a08a0b8c51255d8c7ea8658d33d",
            "usage_events/2026-11-02/billing-20261102-s11-000.ndjson": "238793b03cc5b5b01276d998816de92effa90410ec9ca786c304984e4c3655af",
            "usage_events/2026-11-02/billing-20261102-s11-001.ndjson": "fc4a09c56c673c48831d767c64e31467fbadfa92c5cec55d0964e6d1f8812e26",
            "usage_events/2026-11-02/billing-20261102-s11-002.ndjson.gz": "432f4d7d341a32c4bf7128c91c8ef7222fb217e4bfa4df8e196762568a3c276d",
            "usage_events/2026-11-03/billing-20261103-s11-000.ndjson": "1c22cf65f8c5efa3c85b93d02bc9a042c2226f66f6634f9ce9418ebaf92ad842",
            "usage_events/2026-11-03/billing-20261103-s11-001.ndjson.gz": "d102ca08d4e8f8338c1a9d784d5a47263c2b0d0eba6de994be88c3536aa2e545",
            "usage_events/2026-11-03/billing-20261103-s11-002.ndjson": "8124360306fe346d39e35ea7754129d602e819cf29e4ad297b8bd4c47c6a1ff5",
        },
        "summary": "e8206d69e2c995da2ff89a5d3be5b3e1a83c6fc80f1afe9d18af30b660b80f5c",
        "messages": "b99bb41bc5d7827ae4dd86255e617cd2c008b3b129be7548b676ab0e4ee6c76e",
        "reference": "1368f17b147cde4791b349e115eabe54b1310a2964d75046db39acadbfb4069c",
    },
    "many_organizations": {
        "files": {
            "audit_results/2025-06-29/guardian-20250629-s5-000.ndjson": "a2c5d77727066fc39c2d1802f7b0892150c013fd6cb49b9980ece4fad42df6d8",
            "audit_results/2025-06-30/guardian-20250630-s5-000.ndjson": "d71930dacd19ddd0b72c17ca67aa8a8c57dbd9357d2f08216244539dd6f13c59",
            "error_events/2025-06-29/insight-20250629-s5-000.ndjson": "c6ed7f972a1a0af1b04c77e783f1021b54417305b146ee6bbc9f40785d663cff",
            "error_events/2025-06-30/insight-20250630-s5-000.ndjson": "e409cc69793f3f7c898774c565fe4093a0f910384753ee7c4d41d4c87ec916cf",
            "fix_attestations/2025-06-29/autopilot-20250629-s5-000.ndjson": "c524f5842037edb1268c4bb37e3349a5d8a0ab750697bba83a4512f3b4f45128",
            "fix_attestations/2025-06-30/autopilot-20250630-s5-000.ndjson": "3772a95af4056471b1dbe10cb2d3a7ce1586d04127f61cc6645cd50db22e5237",
            "reference.json": "ce07984a24a456a7564d0e24fe93b81177c4bde2fb69d1e61afb39a322ee4d61",
            "usage_events/2025-06-29/billing-20250629-s5-000.ndjson": "35ca2c060d88efcfc60370e83972e092f2657d0a298cd604f81b69f34422be47",
            "usage_events/2025-06-30/billing-20250630-s5-000.ndjson": "e08ac5dec46983275a0617c14edd073bc68fcbd7fa2be32fea66acb9f693053c",
        },
        "summary": "f4748dcd9757ecfe7061f99465907c767e8f9818b54dd8eccf1139cb55b900ec",
        "messages": "a3d8ea92b1c1ac30ce25de04bd744f6558ac885627f14f4a1fad781f296879bd",
        "reference": "4ffa0ec0fc595e537bd879a8d019d5b120116d878b5e4ad642e7a1461c20adc5",
    },
}
