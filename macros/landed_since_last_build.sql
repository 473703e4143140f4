{#-
    landed_since_last_build(loaded_at='loaded_at') -> a predicate, for the filter of an
    incremental model rebuilt by whole days (docs/incremental_models.md): the row was landed
    after the latest `loaded_at` this model holds (every row, when it holds none).

        where sent_date in (
            select sent_date from {{ ref('int_email_copies') }}
            where {{ landed_since_last_build() }}
        )
-#}
{%- macro landed_since_last_build(loaded_at='loaded_at') -%}
    {{ loaded_at }} > (
        select coalesce(max(loaded_at), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ this }}
    )
{%- endmacro -%}
