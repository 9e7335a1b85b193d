-- Rows, sentences and recordings stored per model, point, modality and language.
SELECT model, point, modality, lang,
       COUNT(*) AS n_rows,
       COUNT(DISTINCT sentence_id) AS n_sentences,
       MIN(n_frames) AS min_frames,
       MAX(n_frames) AS max_frames
FROM activations
GROUP BY model, point, modality, lang
ORDER BY model, point, modality, lang
