{#-
    days_landed_since_last_build(upstream, day_column='sent_date') -> a select of `day_column`

    For the filter of an incremental model rebuilt by whole days (docs/incremental_models.md):
    the days of the rows of `upstream` whose `loaded_at` is later than the latest `loaded_at`
    this model holds; every day of `upstream` when this model holds none.
-#}
{%- macro days_landed_since_last_build(upstream, day_column='sent_date') -%}
    select distinct {{ day_column }}
    from {{ upstream }}
    where loaded_at > (
        select coalesce(max(loaded_at), {{ dbt.cast("'1900-01-01'", dbt.type_timestamp()) }})
        from {{ this }}
    )
{%- endmacro -%}
