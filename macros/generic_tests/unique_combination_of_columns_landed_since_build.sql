{#- Generic test: the combinations held by rows landed since `built_model`'s last build are
    unique in `model` (_generic_tests.yml, docs/incremental_models.md). -#}
{%- test unique_combination_of_columns_landed_since_build(
    model, combination_of_columns, built_model
) -%}
    {%- set quoted = [] -%}
    {%- for column in combination_of_columns -%}
        {%- do quoted.append(adapter.quote(column)) -%}
    {%- endfor %}
-- a combination landed twice since the last build (in a full build: any repeated one), among
-- the rows whose last column repeats (grouping by that one column first leaves fewer rows
-- to group by all of them)
select {{ quoted | join(', ') }}, count(*) as n_records
from {{ model }}
where {{ landed_since_build_of(built_model) }} and {{ quoted[-1] }} in (
    select {{ quoted[-1] }} from {{ model }} where {{ landed_since_build_of(built_model) }}
    group by {{ quoted[-1] }} having count(*) > 1
)
group by {{ quoted | join(', ') }}
having count(*) > 1

union all

-- a combination held before and landed again since (none in a full build: nothing was held
-- before it, which the last line tells the engine before it reads every row that landed)
select held.{{ quoted | join(', held.') }}, 2 as n_records
from (select * from {{ model }}) as held
where
    not ({{ landed_since_build_of(built_model, 'held.loaded_at') }})
    and exists (
        select 1 as landed_again
        from (select * from {{ model }}) as landed
        where
            {%- for column in quoted %}
            landed.{{ column }} = held.{{ column }} and
            {%- endfor %}
            {{ landed_since_build_of(built_model, 'landed.loaded_at') }}
            and exists (
                select 1 as held_before
                from {{ model }}
                where not ({{ landed_since_build_of(built_model) }})
            )
    )
{%- endtest -%}
