"""The 38 original Amazon QA files: names, download URLs and published sha256 checksums.

The checksums are facts about the files served at http://jmcauley.ucsd.edu/data/amazon/qa/
(as published with the ParlAI AmazonQA task); a downloaded file is kept only if it matches.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_URL = "http://jmcauley.ucsd.edu/data/amazon/"

# (kind, original file name) -> sha256. The published list has 37 of the 38 files: the
# multiple-answer Baby file has no published checksum, so it is verified by decompressing it
# completely instead (see download.py) and its sha256 is only recorded.
ORIGINAL_SHA256: dict[tuple[str, str], str | None] = {
    (
        "single",
        "qa_Appliances.json.gz",
    ): "9c613a5dfedd1071431faa29de903b1b0e592c5ac1c7861c26d8b69dfda8ac78",
    (
        "single",
        "qa_Arts_Crafts_and_Sewing.json.gz",
    ): "c9aad6d615294571c1be7ea6a88730829a68e701ca7d1168f4d6b5234c37ac65",
    (
        "single",
        "qa_Automotive.json.gz",
    ): "ca2da4b9d3afd3e6c915d69b34618bdcf9c6febadd7389f368fb51e9e1585009",
    (
        "single",
        "qa_Baby.json.gz",
    ): "acca09d58e7b5487c41de1e21f5a4c676f9aaf1b0534cbeb73c2d5a7444231a0",
    (
        "single",
        "qa_Beauty.json.gz",
    ): "e4e7d28e917fd1b0a605c85eff4c5d3e832a925ab6ed1216147b306984457b90",
    (
        "single",
        "qa_Cell_Phones_and_Accessories.json.gz",
    ): "2ca990b05fbf1282aeeaab139ca8ad005cd540c0ad198ae2558d43cb01f24b42",
    (
        "single",
        "qa_Clothing_Shoes_and_Jewelry.json.gz",
    ): "2c8e24b6d89ccc4084c694a6197d862cdfdc90224877e566dc8170c86ba38d68",
    (
        "single",
        "qa_Electronics.json.gz",
    ): "4ead1073043b6103a3a8eb738a04143f448cd3e200df074ad5071a24ad6bae95",
    (
        "single",
        "qa_Grocery_and_Gourmet_Food.json.gz",
    ): "438a9b97924098484c73d59e9f47e6bdb7898fdc94ae5fcfead0493a37443817",
    (
        "single",
        "qa_Health_and_Personal_Care.json.gz",
    ): "5f3564cf88a56fdf6913ca8e0e7e51478ef829b8faff6bec0e33f46e567bcbf6",
    (
        "single",
        "qa_Home_and_Kitchen.json.gz",
    ): "eefa1f213bb476478c40ab9c2081c7dd0925f2f1df5d3efeb43f6e5715daaeaf",
    (
        "single",
        "qa_Industrial_and_Scientific.json.gz",
    ): "9ae1e9c2db859061350559d59c44125131d8af1149d6e99f45a73687f67a6b0e",
    (
        "single",
        "qa_Musical_Instruments.json.gz",
    ): "a677605d6b6e612a485e939855f85c51a3bf1678da56c81ad5799ce1ef70d8bf",
    (
        "single",
        "qa_Office_Products.json.gz",
    ): "78e895f0df8e647d1c1a0a46f112f57adad9c49584dd48fb90e14648da790025",
    (
        "single",
        "qa_Patio_Lawn_and_Garden.json.gz",
    ): "30a7bc60b39345a818a91a87f528afd860dc479d97115c4274056219471f5222",
    (
        "single",
        "qa_Pet_Supplies.json.gz",
    ): "13a6a722f5f1c3209a0296ef87115ad2cc3ffa490b098c278596a0994484ef41",
    (
        "single",
        "qa_Software.json.gz",
    ): "54847f45ed575611bc3abc88f176491678d1f0c38cad3a15ad5462f99c30e31c",
    (
        "single",
        "qa_Sports_and_Outdoors.json.gz",
    ): "a513460612695249027345f6cb8bde35d8dca664927582f4a1c429a45e60b62d",
    (
        "single",
        "qa_Tools_and_Home_Improvement.json.gz",
    ): "fe29b60e01c9867e7f62ea416bee300cd68f6c7230ac518f94f2fb252e322bc8",
    (
        "single",
        "qa_Toys_and_Games.json.gz",
    ): "231582d4d5aa4959b6344d21ea0bf1b4872aa59645bb9e8107d1056922673dfe",
    (
        "single",
        "qa_Video_Games.json.gz",
    ): "45d626d00f393e9df0191d12e12fbdce6b6655ad14715bba2f8d9fe58fc7e1c2",
    (
        "multiple",
        "QA_Automotive.json.gz",
    ): "2a8209571736a56cfef5a3029545b614b3adfae1de166c179a2488f42fac2533",
    ("multiple", "QA_Baby.json.gz"): None,
    (
        "multiple",
        "QA_Beauty.json.gz",
    ): "1ac51134997c86cc59380b7f1be1885010dd1dd9e0aac7a503255c4f68bda7d0",
    (
        "multiple",
        "QA_Cell_Phones_and_Accessories.json.gz",
    ): "818a0cad91543a508f90ed0b3db11e71c964036a77c896a41cc7aa79283f1940",
    (
        "multiple",
        "QA_Clothing_Shoes_and_Jewelry.json.gz",
    ): "47da83867a89fa7ab376040dc82944e74935cc81e1b86a6e3fc053a7a2dfdb32",
    (
        "multiple",
        "QA_Electronics.json.gz",
    ): "ab1081838b2f603708c3e6b9983a63f65512f46f1e1e0463f4437c88da0c7663",
    (
        "multiple",
        "QA_Grocery_and_Gourmet_Food.json.gz",
    ): "140cdacf2b9bbb27bac0c60dc8a92f1c211cead68879451fac73c5e424bc1dd2",
    (
        "multiple",
        "QA_Health_and_Personal_Care.json.gz",
    ): "c14dcd0bf837b3a26463de3cb2db8c3ad81bb262377ddc36610e8b674d49c833",
    (
        "multiple",
        "QA_Home_and_Kitchen.json.gz",
    ): "2822abbc06d24aa248c01b0a7edd982c8421c8eabaf5af421ded8eadbaf2dbfd",
    (
        "multiple",
        "QA_Musical_Instruments.json.gz",
    ): "e550e0f6a00db32966cb798ee6f3754cf8c16b474ae9ce3b0b8621faa45b4e15",
    (
        "multiple",
        "QA_Office_Products.json.gz",
    ): "1ecb9cd8e7ad0f9049b2b0c350ce7eb304a32e685472da1d7da74dd8a5cb411f",
    (
        "multiple",
        "QA_Patio_Lawn_and_Garden.json.gz",
    ): "f78d127dbb9499af5f87ded005747061cc44c1114edeec8cae7346e044c697d3",
    (
        "multiple",
        "QA_Pet_Supplies.json.gz",
    ): "c0f31cb041a6bbc7dc5f9006c41458f8d9120c949fb6f1e6fe753cec4353e0f1",
    (
        "multiple",
        "QA_Sports_and_Outdoors.json.gz",
    ): "521320c8162c17b361b070fe5f3fc8db4c4205508eff757f12fce284cbd555eb",
    (
        "multiple",
        "QA_Tools_and_Home_Improvement.json.gz",
    ): "473ba7d623b8c43d832a9d7a3440796edcb4320211ca5b7c5dab69ed56b66a50",
    (
        "multiple",
        "QA_Toys_and_Games.json.gz",
    ): "dbeeaef459d266f383fea2845c8c76da6737812724abfb335db6a294870b1b10",
    (
        "multiple",
        "QA_Video_Games.json.gz",
    ): "c54bb576b136146a3afa2a80033312b8b5ee6db721918db9875622e348a7c11c",
}

DEFAULT_CATEGORIES: tuple[str, ...] = (
    "automotive",
    "baby",
    "beauty",
    "cell phones and accessories",
    "grocery and gourmet food",
    "office products",
    "pet supplies",
    "sports and outdoors",
)


@dataclass(frozen=True)
class SourceFile:
    """One original file: where it is served and the name it is saved under."""

    kind: str  # "single" or "multiple"
    name: str  # original file name, e.g. qa_Baby.json.gz
    sha256: str | None

    @property
    def local_name(self) -> str:
        return f"{self.kind}_{self.name}"

    def url(self, base_url: str = BASE_URL) -> str:
        folder = "qa/" if self.kind == "single" else "qa/icdm/"
        return base_url.rstrip("/") + "/" + folder + self.name

    @property
    def category(self) -> str:
        return category_of(self.local_name)


def category_of(file_name: str) -> str:
    """'single_qa_Cell_Phones_and_Accessories.json.gz' -> 'cell phones and accessories'."""
    stem = file_name.split("/")[-1].removesuffix(".json.gz")
    for prefix in ("single_", "multiple_"):
        stem = stem.removeprefix(prefix)
    stem = stem.removeprefix("qa_").removeprefix("QA_")
    return normalize_category(stem)


def normalize_category(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def kind_of(file_name: str) -> str:
    return "multiple" if file_name.split("/")[-1].startswith("multiple_") else "single"


SOURCE_FILES: tuple[SourceFile, ...] = tuple(
    SourceFile(kind, name, sha) for (kind, name), sha in ORIGINAL_SHA256.items()
)
