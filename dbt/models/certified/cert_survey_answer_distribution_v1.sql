{#- Certified answer distribution per scope (municipality or 'ALL') × wave × item × answer category, with a
    '(total)' row per scope × wave × item (answer_ordinal null): the bars of the evaluation report's
    charts. Non-answers ('Ved ikke', blank) are left out, as in the tests. A distribution with a category of
    1 … threshold−1 answers is withheld whole, and 'ALL' with any of its municipalities' (all or nothing,
    docs/disclosure.md), so no suppressed cell is a difference of published ones. -#}
with answers as (
    {#- the answers counted per municipality × wave × item × category (int_survey_answer_counts: per delivery,
        non-answers left out) -#}
    select municipality_code, wave, item_code, answer_ordinal, sum(n_answers)::bigint as n_answers
    from {{ ref('int_survey_answer_counts') }}
    group by municipality_code, wave, item_code, answer_ordinal
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
    select municipality_code, wave, item_code, answer_ordinal, n_answers
    from answers
    union all
    select 'ALL', wave, item_code, answer_ordinal, sum(n_answers)::bigint
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

{#- All or nothing per distribution, 'ALL' withheld with any of its municipalities (macros/suppression.sql,
    docs/disclosure.md). -#}
decided as (
    {{ distribution_all_or_nothing('cells', ['municipality_code', 'wave', 'item_code'], ['wave', 'item_code']) }}
),

final_cells as (select municipality_code, wave, item_code, answer_ordinal, answer_label, answer_label_en, n_answers, is_total, suppressed as suppressed_before from decided),

totals as (
    select municipality_code, wave, item_code, n_answers as n_total, suppressed_before as total_suppressed
    from final_cells
    where is_total
),

final as (
    select
        final_cells.municipality_code::text as municipality_code,
        final_cells.wave::text as wave,
        final_cells.item_code::text as item_code,
        final_cells.answer_ordinal::integer as answer_ordinal,
        final_cells.answer_label::text as answer_label,
        final_cells.answer_label_en::text as answer_label_en,
        final_cells.is_total::boolean as is_total,
        case when not final_cells.suppressed_before then final_cells.n_answers end::integer as n_answers,
        case
            when not final_cells.suppressed_before and not totals.total_suppressed
                then round(final_cells.n_answers::numeric / nullif(totals.n_total, 0), 4)
        end::numeric(6, 4) as share_of_answers,
        final_cells.suppressed_before::boolean as suppressed
    from final_cells
    inner join totals
        on totals.municipality_code = final_cells.municipality_code
        and totals.wave = final_cells.wave
        and totals.item_code = final_cells.item_code
)

select * from final
