// Wiring of the analysis page (/analysis?a=<id>&b=<id>, or ?group=<group>: the first seed of each model
// of a group trained with repeats): one store, the views that redraw from it, then start. Views redraw
// in the order mounted; the status view goes last, so body[data-ready] (for tests) appears only once
// every section has drawn the same state.

import { createStore } from "./analysis-store.js";
import { mountPickers, mountStatus } from "./analysis-page.js";
import { mountVerdict } from "./analysis-verdict.js";
import { mountSeeds } from "./analysis-seeds.js";
import { mountConfusion } from "./analysis-confusion.js";
import { mountTables } from "./analysis-tables.js";
import { mountGallery } from "./analysis-gallery.js";
import { mountPlots } from "./analysis-plots.js";
import { mountMaps } from "./analysis-maps.js";

const store = createStore();
mountPickers(store);
mountVerdict(store);
mountSeeds(store);
mountConfusion(store);
mountTables(store);
mountGallery(store);
mountPlots(store);
mountMaps(store);
mountStatus(store);

const params = new URLSearchParams(location.search);
store.start({ a: params.get("a"), b: params.get("b"), group: params.get("group") });
