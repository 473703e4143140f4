{#- landed_since_build_of(built_model, loaded_at='loaded_at') -> a predicate for a data test that
    runs after `built_model` (a model rebuilt by whole days): landed after the latest
    `loaded_at` among the rows its last build left alone; every row after a full build. -#}
{%- macro landed_since_build_of(built_model, loaded_at='loaded_at') -%}
    {{ loaded_at }} > (
        select coalesce(max(loaded_at), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ built_model }}
        where built_at < (select max(built_at) from {{ built_model }})
    )
{%- endmacro -%}
