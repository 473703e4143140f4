{#- The models' hooks on PostgreSQL (dbt_project.yml); nothing on other adapters. Each model
    runs on a connection of its own, hence hooks per model rather than one per run. -#}

{#- set_postgres_settings() -> SQL for every model's pre-hook: on PostgreSQL `set jit = off`.
    PostgreSQL compiles a query to machine code when its estimated cost passes
    jit_above_cost, and the estimates of these models' joins of CTEs pass it whatever the rows:
    compiling took longer than running the query in a build that reads one new day
    (docs/incremental_models.md, 'On PostgreSQL'). -#}
{%- macro set_postgres_settings() -%}
    {{ return(adapter.dispatch('set_postgres_settings', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__set_postgres_settings() -%}
{%- endmacro -%}

{%- macro postgres__set_postgres_settings() -%}
    set jit = off
{%- endmacro -%}

{#- analyze_on_postgres() -> SQL for every model's post-hook: on PostgreSQL, a table (or
    incremental) model is analyzed once written, so that the models and tests after it are
    planned on its statistics (the index on a day column is used only when the planner knows
    that few rows match), not on guesses until autovacuum comes by. -#}
{%- macro analyze_on_postgres() -%}
    {{ return(adapter.dispatch('analyze_on_postgres', 'account_engagement')()) }}
{%- endmacro -%}

{%- macro default__analyze_on_postgres() -%}
{%- endmacro -%}

{%- macro postgres__analyze_on_postgres() -%}
    {%- if model.config.materialized in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro -%}
