{#- Generic test: the combinations held by rows landed since `built_model`'s last build are
    unique in `model` (_generic_tests.yml, docs/incremental_models.md). -#}
{%- test unique_combination_of_columns_landed_since_build(
    model, combination_of_columns, built_model
) -%}
    {%- set quoted = [] -%}
    {%- set joined = [] -%}
    {%- for column in combination_of_columns -%}
        {%- do quoted.append(adapter.quote(column)) -%}
        {%- do joined.append('landed.' ~ adapter.quote(column) ~ ' = held.' ~ adapter.quote(column)) -%}
    {%- endfor %}
with

landed as (

    select {{ quoted | join(', ') }} from {{ model }}
    where {{ landed_since_build_of(built_model) }}

),

held as (

    select {{ quoted | join(', ') }} from {{ model }}
    where not ({{ landed_since_build_of(built_model) }})

)

-- a combination landed twice since, and one landed since that was held before
select {{ quoted | join(', ') }}, count(*) as n_records
from landed
group by {{ quoted | join(', ') }}
having count(*) > 1

union all

select landed.{{ quoted | join(', landed.') }}, 2 as n_records
from landed
inner join held on {{ joined | join(' and ') }}
{%- endtest -%}
