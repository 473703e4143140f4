{%- set attributes = [
    'LeadspaceCompanyId', 'CompanyName', 'Website', 'Industry', 'SubIndustry', 'SIC', 'NAICS',
    'EmployeeCount', 'EmployeeRange', 'RevenueUsd', 'RevenueRange', 'Country', 'State', 'City',
    'MatchConfidence',
] -%}

with

leadspace as (

    select * from {{ ref('leadspace') }}

),

coverage as (

    {% for attribute in attributes %}
    select
        '{{ attribute }}' as attribute_name,
        {{ loop.index }} as attribute_order,
        count("{{ attribute }}") as accounts_with_value,
        count(*) as accounts_sent
    from leadspace
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        cast(attribute_name as {{ dbt.type_string() }}) as "Attribute",
        cast(attribute_order as {{ dbt.type_int() }}) as "AttributeOrder",
        cast(accounts_with_value as {{ dbt.type_int() }}) as "AccountsWithValue",
        cast(accounts_sent as {{ dbt.type_int() }}) as "AccountsSent",
        -- one division of two doubles holding whole numbers: the same bits on every engine (a
        -- decimal division first, `1.0 * a / b`, rounds to each engine's own scale)
        cast(accounts_with_value as {{ type_double() }})
        / cast(accounts_sent as {{ type_double() }}) as "Coverage"
    from coverage
    -- empty while nothing was sent to Leadspace (and after `remove leadspace`)
    where accounts_sent > 0

)

select * from final
