{#- rewritten_since_last_build(built_at='built_at') -> a predicate: written by a build later than
    the latest `built_at` this model holds (docs/incremental_models.md) -#}
{%- macro rewritten_since_last_build(built_at='built_at') -%}
    {{ built_at }} > (
        select coalesce(max(built_at), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ this }}
    )
{%- endmacro -%}
