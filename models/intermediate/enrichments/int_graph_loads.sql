{%- set graph_tables = [
    'stg_graph__users', 'stg_graph__mail_folders', 'stg_graph__messages', 'stg_graph__events',
] -%}

with

{% for table in graph_tables %}
{{ table }} as (

    select
        '{{ table.replace("stg_graph__", "") }}' as graph_table,
        count(*) as landed_rows,
        max(loaded_at) as last_loaded_at
    from {{ ref(table) }}

),

{% endfor %}
final as (

    {% for table in graph_tables %}
    select * from {{ table }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
