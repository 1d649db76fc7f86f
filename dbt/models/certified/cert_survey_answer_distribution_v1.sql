{#- Certified answer distribution per scope (municipality or 'ALL') × wave × item × answer category, with a
    '(total)' row per scope × wave × item (answer_ordinal null): the bars of the evaluation report's
    charts. Non-answers ('Ved ikke', blank) are left out, as in the tests. Categories with 1 … threshold−1
    answers are suppressed; secondary suppression runs over both margins (categories within an item's
    total, municipalities within 'ALL'), three passes, so no suppressed cell is a difference of published
    ones. -#}
with answers as (
    select * from {{ ref('fct_survey_answer') }}
    where not is_non_answer and answer_ordinal is not null
),

categories as (
    select item_code, answer_ordinal, answer_label, answer_label_en
    from {{ ref('int_survey_item_answers') }}
    where not is_non_answer
),

scopes as (
    select distinct municipality_code, wave, item_code from answers
    union
    select distinct 'ALL', wave, item_code from answers
),

counted as (
    select municipality_code, wave, item_code, answer_ordinal, count(*) as n_answers
    from answers
    group by municipality_code, wave, item_code, answer_ordinal
    union all
    select 'ALL', wave, item_code, answer_ordinal, count(*)
    from answers
    group by wave, item_code, answer_ordinal
),

grid as (
    select
        scopes.municipality_code,
        scopes.wave,
        scopes.item_code,
        categories.answer_ordinal,
        categories.answer_label,
        categories.answer_label_en,
        coalesce(counted.n_answers, 0) as n_answers,
        false as is_total
    from scopes
    inner join categories
        on categories.item_code = scopes.item_code
    left join counted
        on counted.municipality_code = scopes.municipality_code
        and counted.wave = scopes.wave
        and counted.item_code = scopes.item_code
        and counted.answer_ordinal = categories.answer_ordinal
),

cells as (
    select * from grid
    union all
    select
        municipality_code, wave, item_code, null, '(i alt)', '(total)', sum(n_answers), true
    from grid
    group by municipality_code, wave, item_code
),

{%- set cols = 'municipality_code, wave, item_code, answer_ordinal, answer_label, answer_label_en, n_answers, is_total' %}

pass_1 as (
    {{ secondary_suppression('cells', ['municipality_code', 'wave', 'item_code'],
                             primary=is_small('n_answers'), size='n_answers', is_total='is_total') }}
),

pass_1_cells as (select {{ cols }}, suppressed as suppressed_before from pass_1),

pass_2 as (
    {{ secondary_suppression('pass_1_cells', ['wave', 'item_code', 'coalesce(answer_ordinal, -1)'],
                             primary='suppressed_before', size='n_answers',
                             is_total="municipality_code = 'ALL'") }}
),

pass_2_cells as (select {{ cols }}, suppressed as suppressed_before from pass_2),

pass_3 as (
    {{ secondary_suppression('pass_2_cells', ['municipality_code', 'wave', 'item_code'],
                             primary='suppressed_before', size='n_answers', is_total='is_total') }}
),

totals as (
    select municipality_code, wave, item_code, n_answers as n_total, suppressed as total_suppressed
    from pass_3
    where is_total
),

final as (
    select
        pass_3.municipality_code::text as municipality_code,
        pass_3.wave::text as wave,
        pass_3.item_code::text as item_code,
        pass_3.answer_ordinal::integer as answer_ordinal,
        pass_3.answer_label::text as answer_label,
        pass_3.answer_label_en::text as answer_label_en,
        pass_3.is_total::boolean as is_total,
        case when not pass_3.suppressed then pass_3.n_answers end::integer as n_answers,
        case
            when not pass_3.suppressed and not totals.total_suppressed
                then round(pass_3.n_answers::numeric / nullif(totals.n_total, 0), 4)
        end::numeric(6, 4) as share_of_answers,
        pass_3.suppressed::boolean as suppressed
    from pass_3
    inner join totals
        on totals.municipality_code = pass_3.municipality_code
        and totals.wave = pass_3.wave
        and totals.item_code = pass_3.item_code
)

select * from final
