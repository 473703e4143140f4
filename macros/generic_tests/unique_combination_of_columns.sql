{#-
    Generic test: the combination of `combination_of_columns` is unique in `model`
    (null values are compared as equal, like `group by` does). Fails with one row per
    duplicated combination and its count.

    models:
      - name: stg_graph__messages
        data_tests:
          - unique_combination_of_columns:
              arguments:
                combination_of_columns: [mailbox_id, message_id]
                landed_since_build_of: int_email_addresses

    With `landed_since_build_of` (the name of an incremental model with a `loaded_at` column,
    in the target schema), only the keys of the rows landed since that model's last build
    (`loaded_at_column` later than its latest `loaded_at`) are checked, against every row:
    each build checks what the loader added since the previous one, instead of grouping
    every row again (tens of millions of mail copies). The model is looked up by name, not
    ref(), so that `dbt build` runs this test before it rebuilds that model. When that model
    does not exist yet, or is empty, every row is checked. Null keys are then not compared
    (the columns' not_null tests cover them).

    For an incremental model built from the landed rows, two more arguments:
    - `partition_column`: the model rebuilds whole partitions (e.g. `activity_date`, days),
      and a rebuilt row keeps the `loaded_at` of its data: every row of the partitions that
      hold a row landed since is checked, not only the landed keys;
    - `rebuilt_whole_when_differs`: a column that the model and `landed_since_build_of` store
      alike on every row of a build (`address_rules`): when the model's differs from the
      other's, the model was rebuilt whole since, and every row is checked.
-#}
{%- test unique_combination_of_columns(
    model, combination_of_columns, landed_since_build_of=none, loaded_at_column='loaded_at',
    partition_column=none, rebuilt_whole_when_differs=none
) -%}
    {%- if combination_of_columns is string -%}
        {%- set combination_of_columns = [combination_of_columns] -%}
    {%- endif -%}
    {%- if combination_of_columns | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "unique_combination_of_columns on " ~ model ~ " needs at least one column"
        ) }}
    {%- endif -%}
    {%- set column_list = combination_of_columns | join(', ') -%}
    {%- set watermark = last_build_watermark(landed_since_build_of) -%}
    {%- if watermark is not none and rebuilt_whole_when_differs
        and max_value_of(model, rebuilt_whole_when_differs)
            != max_value_of(relation_named(landed_since_build_of), rebuilt_whole_when_differs) -%}
        {%- set watermark = none -%}
    {%- endif -%}
    {#- which rows: all, those of the partitions holding a landed row, or the landed keys -#}
    {%- set scope = none -%}
    {%- if watermark is not none and partition_column -%}
        {%- set scope -%}
        {{ partition_column }} in (
            select {{ partition_column }}
            from {{ model }}
            where {{ landed_after(loaded_at_column, watermark) }}
        )
        {%- endset -%}
    {%- endif -%}
    {%- set check_landed_keys = watermark is not none and not scope -%}

    {%- set key_hash = row_key_hash(combination_of_columns) -%}

    {%- if not check_landed_keys and key_hash %}
    -- two passes where the engine has a fast hash of several columns: grouping tens of
    -- millions of rows by one number finds the candidate keys (a collision only adds a
    -- candidate), grouping those few by the columns decides
    select
        {{ column_list }},
        count(*) as n_records
    from {{ model }}
    where
        {% if scope %}{{ scope }} and {% endif %}{{ key_hash }} in (
            select {{ key_hash }}
            from {{ model }}
            {% if scope %}where {{ scope }}{% endif %}
            group by {{ key_hash }}
            having count(*) > 1
        )
    group by {{ column_list }}
    having count(*) > 1
    {%- elif not check_landed_keys %}
    select
        {{ column_list }},
        count(*) as n_records
    from {{ model }}
    {% if scope %}where {{ scope }}{% endif %}
    group by {{ column_list }}
    having count(*) > 1
    {%- else %}
    select
        {%- for column in combination_of_columns %}
        all_rows.{{ column }},
        {%- endfor %}
        count(*) as n_records
    from {{ model }} as all_rows
    inner join (
        select distinct {{ column_list }}
        from {{ model }}
        where {{ landed_after(loaded_at_column, watermark) }}
    ) as landed
        on
        {%- for column in combination_of_columns %}
            {% if not loop.first %}and {% endif %}all_rows.{{ column }} = landed.{{ column }}
        {%- endfor %}
    group by
        {%- for column in combination_of_columns %}
        all_rows.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    having count(*) > 1
    {%- endif %}
{%- endtest -%}
