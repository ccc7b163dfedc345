"""What every asset carries in the UI: owners, a domain tag, the warehouse as a kind, links to its code.

Applied once, where the Definitions are assembled, so no asset can miss them; each asset still names its
own kinds (pandas, scikit-learn, sql) and table metadata where it is defined.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetsDefinition, AssetSpec, SourceAsset, with_source_code_references

from persona_pipeline.config import owners, warehouse_url

DOMAIN_TAG = "persona-pipeline/domain"  # sources, sql_models, persona_sets, studies: the UI filters on it


def warehouse_kind() -> str:
    """The warehouse's engine as a Dagster kind (an icon in the UI): postgres, sqlite, ..."""
    scheme = warehouse_url().split(":", 1)[0].split("+", 1)[0]
    return "postgres" if scheme.startswith("postgres") else scheme


def with_conventions(
    assets: Sequence[AssetsDefinition | SourceAsset], domain: str
) -> list[AssetsDefinition | SourceAsset]:
    """`assets` with owners, the domain tag and code references; sources (observable) keep theirs."""

    people, engine = owners(), warehouse_kind()  # read once, not per asset

    def spec(one: AssetSpec) -> AssetSpec:
        kinds = {*one.kinds, engine} if len(one.kinds) < 3 else set(one.kinds)  # the UI shows 3
        return one.replace_attributes(owners=people, tags={**one.tags, DOMAIN_TAG: domain}, kinds=kinds)

    marked = [a.map_asset_specs(spec) if isinstance(a, AssetsDefinition) else a for a in assets]
    return list(with_source_code_references(marked))
