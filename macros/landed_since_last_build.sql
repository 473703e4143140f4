{#- landed_since_last_build(loaded_at='loaded_at') -> a predicate: landed after the latest
    `loaded_at` this model holds (docs/incremental_models.md) -#}
{%- macro landed_since_last_build(loaded_at='loaded_at') -%}
    {{ loaded_at }} > (
        select coalesce(max(loaded_at), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ this }}
    )
{%- endmacro -%}
