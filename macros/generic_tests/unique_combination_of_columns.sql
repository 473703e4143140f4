{#- Generic test: the combination of `combination_of_columns` is unique in `model` (null values
    compare as equal, as `group by` does; the names are quoted, so `AccountId` keeps its case).
    Fails with one row per repeated combination and its count; dbt's `where` restricts the rows
    (_generic_tests.yml; int_email_participants has one). -#}
{%- test unique_combination_of_columns(model, combination_of_columns) -%}
    {%- if combination_of_columns is string -%}
        {%- set combination_of_columns = [combination_of_columns] -%}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for column in combination_of_columns -%}
        {%- do quoted.append(adapter.quote(column)) -%}
    {%- endfor -%}
    select
        {{ quoted | join(', ') }},
        count(*) as n_records
    from {{ model }}
    group by {{ quoted | join(', ') }}
    having count(*) > 1
{%- endtest -%}
