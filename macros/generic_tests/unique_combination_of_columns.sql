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
-#}
{%- test unique_combination_of_columns(model, combination_of_columns) -%}
    {%- if combination_of_columns is string -%}
        {%- set combination_of_columns = [combination_of_columns] -%}
    {%- endif -%}
    {%- if combination_of_columns | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "unique_combination_of_columns on " ~ model ~ " needs at least one column"
        ) }}
    {%- endif -%}
    {%- set column_list = combination_of_columns | join(', ') -%}

    select
        {{ column_list }},
        count(*) as n_records
    from {{ model }}
    group by {{ column_list }}
    having count(*) > 1
{%- endtest -%}
